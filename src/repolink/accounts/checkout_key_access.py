"""Checkout keys as a person may use them: the role each action needs and its audit entry,
around :class:`~repolink.platform.checkout_keys.CheckoutKeyService` (issue 11 §5, issue 12).

The CircleCI-shaped API (:mod:`repolink.http.circleci`) and the Checkout keys page
(:mod:`repolink.web.checkout_keys`) both call this, so a key made or deleted on the page is
checked and audited as one made or deleted through the API. Reading keys needs the viewer
role; creating or deleting a deploy key, admin; a user key is created by its own user (member
or above) and deleted by them or a project admin.
"""

from __future__ import annotations

from repolink.accounts.access import AccessService
from repolink.accounts.audit import AuditService
from repolink.auth.principal import Principal, Role
from repolink.errors import NotFound, PermissionDenied
from repolink.platform.checkout_keys import DEPLOY_KEY, CheckoutKeyInfo, CheckoutKeyService


class CheckoutKeyAccess:
    def __init__(
        self, keys: CheckoutKeyService, access: AccessService, audit: AuditService
    ) -> None:
        self._keys = keys
        self._access = access
        self._audit = audit

    def list(self, principal: Principal, project_slug: str) -> list[CheckoutKeyInfo]:
        return self._keys.list_keys(self.project(principal, project_slug, Role.VIEWER))

    def get(self, principal: Principal, project_slug: str, fingerprint: str) -> CheckoutKeyInfo:
        slug = self.project(principal, project_slug, Role.VIEWER)
        return self._keys.get_key(slug, fingerprint)

    def create(self, principal: Principal, project_slug: str, kind: str) -> CheckoutKeyInfo:
        """A new deploy key (``kind`` ``deploy-key``: a rotation starts) or a user key of the
        calling user (any other ``kind``)."""
        if kind == DEPLOY_KEY:
            slug = self.project(principal, project_slug, Role.ADMIN)
            key = self._keys.create_deploy_key(slug)
        else:
            slug = self.project(principal, project_slug, Role.MEMBER)
            if principal.user_id is None:
                raise PermissionDenied(
                    "user_key_needs_user",
                    "a user key belongs to a user, and this token belongs to no user",
                    "make the user key with a token of the user it is for",
                )
            key = self._keys.create_user_key(slug, principal.user_id)
        self._audit.record(
            principal,
            "checkout_key.create",
            project=slug,
            target=key.fingerprint_sha256,
            details={"type": key.kind},
        )
        return key

    def delete(self, principal: Principal, project_slug: str, fingerprint: str) -> CheckoutKeyInfo:
        """Delete a checkout key; answers the key as it was."""
        slug = self.project(principal, project_slug, Role.MEMBER)
        role = self._access.role(principal, slug)
        key = self._keys.delete_key(
            slug,
            fingerprint,
            actor_user_id=principal.user_id,
            project_admin=role.allows(Role.ADMIN),
        )
        self._audit.record(
            principal,
            "checkout_key.delete",
            project=slug,
            target=key.fingerprint_sha256,
            details={"type": key.kind},
        )
        return key

    def project(self, principal: Principal, project_slug: str, required: Role) -> str:
        """Our slug of the project ``project_slug`` names (ours or CircleCI's VCS/ORG/REPO), if
        ``principal`` may do what needs ``required`` there; an invisible project is
        ``project_not_found``, as any missing one."""

        def visible(slug: str) -> bool:
            try:
                self._access.role(principal, slug)
            except NotFound:
                return False
            return True

        slug = self._keys.resolve_project(project_slug, visible=visible)
        self._access.project(principal, slug, required)
        return slug

"""The web pages: server-rendered HTML for people, on the same services as the APIs.

An adapter beside ``http/`` (which composes it into the service app without being imported
by it): :mod:`repolink.web.site` builds the one router of every page under ``/ui``, from the
page builders its ``PAGES`` lists. docs/architecture.md, "Web pages", says how to add a page.
"""

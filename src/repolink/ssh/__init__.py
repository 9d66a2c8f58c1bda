"""The SSH adapters of the built-in host: the embedded asyncssh server, the OpenSSH-mode shell
(a forced command of sshd), the relay between a client and git, and the server's own host keys.

They parse and relay; what a key may do is decided by the host services.
"""

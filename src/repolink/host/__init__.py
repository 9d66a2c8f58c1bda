"""The built-in Git host: hosted repositories, account and access keys, SSH and HTTP access."""

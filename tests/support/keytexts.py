"""Key texts the tests paste where a key is asked for, made by no tool at test time."""

from __future__ import annotations

# A PuTTY .ppk file (what PuTTYgen saves): every key input names it `key_putty_format`.
PUTTY = (
    "PuTTY-User-Key-File-3: ssh-ed25519\n"
    "Encryption: none\n"
    "Comment: eddsa-key-20240101\n"
    "Public-Lines: 2\n"
    "AAAAC3NzaC1lZDI1NTE5AAAAIOd3FSFdQTAvM3dyfoU4bUImx1p4cdvKtyDd3z4\n"
    "wsDzs\n"
    "Private-Lines: 1\n"
    "AAAAIB7KnsykBYXw2BwiKkg2Sr1mkSq7l9v0PflpkbwMgtqP\n"
    "Private-MAC: 5a3b4c\n"
)

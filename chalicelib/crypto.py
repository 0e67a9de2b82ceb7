"""Message body encryption for queues with ``_enable_encrypt_messages``.

AES-256-CBC with a random IV per message and PKCS7 padding; the key is the
SHA-256 of the configured ``MESSAGE_ENCRYPTION_KEY``. Stored form:
base64(iv || ciphertext). The cipher (pycryptodomex: a smaller package than
``cryptography``) is imported only when a queue actually encrypts, so other
requests do not pay for it.
"""

from __future__ import annotations

import base64
import hashlib
import os


def _key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def encrypt(secret: str, text: str) -> str:
    from Cryptodome.Cipher import AES
    from Cryptodome.Util.Padding import pad

    iv = os.urandom(16)
    cipher = AES.new(_key(secret), AES.MODE_CBC, iv=iv)
    return base64.b64encode(iv + cipher.encrypt(pad(text.encode(), AES.block_size))).decode()


def decrypt(secret: str, stored: str) -> str:
    from Cryptodome.Cipher import AES
    from Cryptodome.Util.Padding import unpad

    raw = base64.b64decode(stored)
    cipher = AES.new(_key(secret), AES.MODE_CBC, iv=raw[:16])
    return unpad(cipher.decrypt(raw[16:]), AES.block_size).decode()

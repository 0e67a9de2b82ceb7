"""Message body encryption for queues with ``_enable_encrypt_messages``.

AES-256-CBC with a random IV per message and PKCS7 padding; the key is the
SHA-256 of the configured ``MESSAGE_ENCRYPTION_KEY``. Stored form:
base64(iv || ciphertext). ``cryptography`` is imported only when a queue
actually encrypts, so other requests do not pay for it.
"""

from __future__ import annotations

import base64
import hashlib
import os


def _key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def encrypt(secret: str, text: str) -> str:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    data = padder.update(text.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_key(secret)), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(data) + encryptor.finalize()).decode()


def decrypt(secret: str, stored: str) -> str:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    raw = base64.b64decode(stored)
    decryptor = Cipher(algorithms.AES(_key(secret)), modes.CBC(raw[:16])).decryptor()
    data = decryptor.update(raw[16:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(data) + unpadder.finalize()).decode()

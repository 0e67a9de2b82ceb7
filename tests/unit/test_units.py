"""Pure logic, no I/O."""

from __future__ import annotations

import dataclasses
import random
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib import crypto, errors
from chalicelib.api import validation
from chalicelib.api.queues import apply_patch, metadata_filters
from chalicelib.config import ConfigError, Limits, Settings
from chalicelib.storage.pooling import choose_weighted
from chalicelib.storage.pools import Pool
from chalicelib.storage.redis import keys
from infra.local.gateway import RouteTable


def test_settings_default_to_zaqar_limits_and_refuse_bad_values() -> None:
    settings = Settings.from_mapping({})
    assert settings.limits == Limits()
    assert settings.catalog_url.endswith("catalog.sqlite3")
    assert Settings.from_mapping({"ADMIN_MODE": "yes"}).admin_mode
    with pytest.raises(ConfigError, match="ADMIN_MODE"):
        Settings.from_mapping({"ADMIN_MODE": "maybe"})
    with pytest.raises(ConfigError, match="MAX_MESSAGE_TTL"):
        Settings.from_mapping({"MAX_MESSAGE_TTL": "lots"})
    assert Settings.from_mapping({}).idempotency_window == 300
    assert Settings.from_mapping({"IDEMPOTENCY_WINDOW": "1.5"}).idempotency_window == 1.5
    with pytest.raises(ConfigError, match="IDEMPOTENCY_WINDOW must be at least 1"):
        Settings.from_mapping({"IDEMPOTENCY_WINDOW": "0"})


def test_encryption_round_trips_with_a_fresh_iv_each_time() -> None:
    first = crypto.encrypt("k", '{"a":1}')
    second = crypto.encrypt("k", '{"a":1}')
    assert first != second
    assert crypto.decrypt("k", first) == crypto.decrypt("k", second) == '{"a":1}'


def test_stored_ciphertexts_are_plain_aes_cbc_both_ways() -> None:
    """Bodies encrypted before the cipher library changed (``cryptography``) stay readable, and the reverse:
    the stored form is base64(iv || AES-256-CBC(PKCS7(text))) with the key SHA-256(secret)."""
    import base64
    import hashlib

    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = hashlib.sha256(b"secret").digest()
    iv = bytes(range(16))
    padder = padding.PKCS7(128).padder()
    data = padder.update('{"ü": 1}'.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    theirs = base64.b64encode(iv + encryptor.update(data) + encryptor.finalize()).decode()
    assert crypto.decrypt("secret", theirs) == '{"ü": 1}'

    ours = base64.b64decode(crypto.encrypt("secret", "x" * 33))
    decryptor = Cipher(algorithms.AES(key), modes.CBC(ours[:16])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    plain = unpadder.update(decryptor.update(ours[16:]) + decryptor.finalize()) + unpadder.finalize()
    assert plain == b"x" * 33
    with pytest.raises(ValueError):
        crypto.decrypt("another secret", theirs)


def test_weighted_choice_skips_zero_weights_and_follows_weights() -> None:
    pools = [Pool("a", "redis://a", 0, None, {}), Pool("b", "redis://b", 1, None, {}), Pool("c", "redis://c", 3, None, {})]
    rng = random.Random(7)
    picks = [choose_weighted(pools, rng.randint) for _ in range(4000)]
    names = [p.name for p in picks if p is not None]
    assert "a" not in names
    assert 0.7 < names.count("c") / len(names) < 0.8
    assert choose_weighted([pools[0]], rng.randint) is None


def test_patch_is_all_or_nothing() -> None:
    current = {"a": 1}
    with pytest.raises(errors.Conflict):
        apply_patch(current, [{"op": "add", "path": "/metadata/b", "value": 2}, {"op": "remove", "path": "/metadata/x"}],
                    Limits())
    assert current == {"a": 1}
    assert apply_patch(current, [{"op": "remove", "path": "/metadata/_max_claim_count"}], Limits()) == {"a": 1}


def test_metadata_filters_coerce_numbers() -> None:
    assert metadata_filters({"limit": "5", "n": "3", "s": "x"}, {"limit"}) == {"n": 3, "s": "x"}


def test_queue_settings_extract_what_drivers_act_on() -> None:
    settings = validation.queue_settings(
        {"_default_message_ttl": 120, "_dead_letter_queue": "dlq", "_max_claim_count": 3, "free": "form"},
        Limits(), encryption_available=False,
    )
    assert (settings.default_ttl, settings.dead_letter_queue, settings.max_claim_count) == (120, "dlq", 3)
    with pytest.raises(errors.InvalidBody, match="MESSAGE_ENCRYPTION_KEY"):
        validation.queue_settings({"_enable_encrypt_messages": True}, Limits(), encryption_available=False)


def test_keys_of_one_queue_share_a_hash_tag_and_tenants_cannot_collide() -> None:
    names = keys.queue_keys("proj", "q")
    assert len({name.split("}")[0] for name in names}) == 1
    assert keys.tag("a/b", "c") != keys.tag("a", "b/c")
    assert keys.tag("p}x", "q") == "{p%7Dx/q}"


def test_route_table_prefers_literal_segments_and_decodes_parameters() -> None:
    table = RouteTable({"/v2/queues/{queue_name}": {}, "/v2/queues/{queue_name}/stats": {}, "/v2/ping": {}, "/": {}})
    assert table.match("/v2/queues/a%2Eb") == ("/v2/queues/{queue_name}", {"queue_name": "a.b"})
    assert table.match("/v2/queues/x/stats/") == ("/v2/queues/{queue_name}/stats", {"queue_name": "x"})
    assert table.match("/") == ("/", {})
    assert table.match("/v2/nope") is None


class _Admin:
    def __init__(self, hello: dict[str, object]) -> None:
        self.hello = hello

    def command(self, name: str) -> dict[str, object]:
        assert name == "hello"
        return self.hello


class _Client:
    """A mongomock client whose server says what kind of deployment it is."""

    def __init__(self, hello: dict[str, object]) -> None:
        import mongomock

        self._inner = mongomock.MongoClient()
        self.admin = _Admin(hello)

    def __getitem__(self, name: str) -> object:
        return self._inner[name]


def test_mongodb_pools_refuse_a_standalone_server_unless_told_durability_is_not_needed() -> None:
    from chalicelib.storage.mongodb.driver import MongoStore, pool_options

    with pytest.raises(errors.InvalidBody, match="standalone"):
        MongoStore(client=_Client({"isWritablePrimary": True}), database="d")
    MongoStore(client=_Client({"setName": "rs0"}), database="d")
    MongoStore(client=_Client({"msg": "isdbgrid"}), database="d")
    MongoStore(client=_Client({}), database="d", unreliable=True)
    url, unreliable = pool_options("mongodb://h:27017/zaqar?unreliable=true&w=1&timeoutMS=900")
    assert unreliable and parse_qs(urlsplit(url).query) == {  # the URI's own options win over our defaults
        "w": ["1"], "timeoutMS": ["900"], "serverSelectionTimeoutMS": ["3000"], "connectTimeoutMS": ["3000"],
        "readConcernLevel": ["majority"]}
    assert pool_options("mongodb://h/zaqar")[1] is False


def test_log_records_are_json_lines() -> None:
    import json
    import logging

    from chalicelib.observability import JsonFormatter

    record = logging.LogRecord("zaqar", logging.WARNING, __file__, 1, "pool %s is slow", ("p1",), None)
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "zaqar", "pool p1 is slow")


def test_a_queue_tag_names_its_tenant_and_queue_back() -> None:
    for project, queue in [("proj", "q"), ("a/b", "c"), ("p}x {y}%", "orders-1")]:
        assert keys.from_tag_body(keys.tag_body(project, queue)) == (project, queue)


def test_number_settings_take_fractions_where_they_are_seconds_and_name_the_culprit() -> None:
    from chalicelib.config import ConfigError, Settings

    assert Settings.from_mapping({"WEBHOOK_TIMEOUT": "0.5"}).webhook_timeout == 0.5
    with pytest.raises(ConfigError, match="WEBHOOK_TIMEOUT must be a number"):
        Settings.from_mapping({"WEBHOOK_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="MAX_MESSAGE_TTL must be an integer"):
        Settings.from_mapping({"MAX_MESSAGE_TTL": "1.5"})


def test_settings_read_fractions_and_keep_each_default_on_its_field() -> None:
    settings = Settings.from_mapping({"WEBHOOK_TIMEOUT": "0.5", "CATALOG_CACHE_TTL": "2.5", "KEYSTONE_TIMEOUT": "1.5",
                                      "KEYSTONE_CACHE_TTL": "0.25", "MAX_MESSAGE_TTL": "600"})
    assert (settings.webhook_timeout, settings.catalog_cache_ttl, settings.keystone_timeout,
            settings.keystone_cache_ttl, settings.limits.max_message_ttl) == (0.5, 2.5, 1.5, 0.25, 600)
    with pytest.raises(ConfigError, match="KEYSTONE_TIMEOUT must be a number"):
        Settings.from_mapping({"KEYSTONE_TIMEOUT": "soon"})
    unset = Settings.from_mapping({})
    for field in dataclasses.fields(Settings):  # an empty environment gives every field its declared default
        if field.default is not dataclasses.MISSING:
            assert getattr(unset, field.name) == field.default, field.name
    assert unset.limits == Limits()

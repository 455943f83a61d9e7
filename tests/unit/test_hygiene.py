"""Which secret versions hold a dead key, from their tags alone (hygiene.dead_versions)."""

from datetime import datetime, timedelta, timezone

from cosmos_key_rotation.hygiene import dead_versions
from cosmos_key_rotation.vault import LiveSecret

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def version(name, kind=None, generated=None, enabled=True):
    tags = {"keyKind": kind} if kind else {}
    if generated is not None:
        tags["keyGeneratedAt"] = generated.isoformat().replace("+00:00", "Z")
    return LiveSecret("cs", name, T0, tags, enabled=enabled)


def test_only_enabled_tagged_versions_of_a_key_regenerated_since_and_never_the_live_one():
    versions = [
        version("v0", "primary", T0),  # primary regenerated since: dead
        version("v1", "secondary", T0 + timedelta(days=14)),  # the secondary is still that one: valid
        version("v2", "primary", T0, enabled=False),  # already disabled
        version("v3"),  # published by someone else: no tags, never touched
        version("v4", "primary", T0 + timedelta(days=28)),  # live
        version("v5", "primary", T0 + timedelta(days=1)),  # dead too
    ]
    generated = {"primary": T0 + timedelta(days=28), "secondary": T0 + timedelta(days=14)}
    assert dead_versions(versions, generated, live_version="v4") == ["v0", "v5"]
    assert dead_versions(versions, generated, live_version="v0") == ["v5"]
    assert dead_versions(versions, {}, live_version="v4") == []  # keysMetadata unknown: nothing is dead

"""The template's KMS keys (``AWS::KMS::Key``) and aliases (``AWS::KMS::Alias``) in the local runtime's moto.

The runtime creates them at start, as it creates the table and the queues: through moto's KMS API, with
the template's properties (description, key spec and usage, key policy, rotation), and resolves
``!Ref``/``!GetAtt`` of them to the key's id and ARN, so the functions' ``SECRETS_KEY_ARN`` and their roles'
``kms:*`` statements (``dora_local.iam``) name the key moto holds.

With a data directory (``make serve``), a key is the same key across restarts: the ciphertexts in the
kept table must still decrypt. moto's KMS keeps nothing, and a new key has a new id and new key material,
so the first start writes each key's id and material to :data:`KEYS_FILE` in the directory (beside the
tables, never committed: the directory's ``.gitignore`` ignores everything), and every later start gives
them back to the key it creates. This is moto's own ``Key`` object (``id``, ``arn``, ``key_material``), as
verified with the moto versions of ``dora_local.motofix`` (a data directory requires one of them).
Without a data directory every start has a new key, as it has an empty table.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dora_local.template import ACCOUNT, REGION, Resolver, resources

__all__ = ["KEYS_FILE", "Created", "create", "delete"]

KEYS_FILE = "kms-keys.json"
_KEY_PROPERTIES = {"Description": "Description", "KeySpec": "KeySpec", "KeyUsage": "KeyUsage"}


@dataclass
class Created:
    """What :func:`create` made in moto (for :func:`delete`): key ids and alias names."""

    key_ids: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


def _backend() -> Any:
    """moto's KMS backend of the runtime's account and region (its server runs in this process)."""
    from moto.kms.models import kms_backends

    return kms_backends[ACCOUNT][REGION]


def _read(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RuntimeError(f"{path} cannot be read ({error}): the kept secrets could not be decrypted") from None
    return kept if isinstance(kept, dict) else {}


def _write(path: Path, kept: dict[str, dict[str, str]]) -> None:
    """Write the file atomically, readable by its owner only (it holds key material)."""
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(kept, out, indent=1, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _restore(new_id: str, kept: dict[str, str]) -> str:
    """Give the key moto just made (``new_id``) the id and material kept from an earlier start; its id."""
    backend = _backend()
    key = backend.keys.pop(new_id)
    key.id = kept["id"]
    key.arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key.id}"
    key.key_material = base64.b64decode(kept["material"])
    backend.keys[key.id] = key
    return str(key.id)


def create(doc: dict[str, Any], resolver: Resolver, client: Any, data_dir: Path | None) -> Created:
    """Create the template's keys, then its aliases, in moto (``client``: a KMS client on it); record their
    ids, ARNs and names in ``resolver``. With ``data_dir``, keys keep their id and material across starts."""
    created = Created()
    path = data_dir / KEYS_FILE if data_dir is not None else None
    kept = _read(path) if path is not None else {}
    changed = False
    for logical_id, resource in resources("AWS::KMS::Key", doc).items():
        props = resolver.resolve(resource.get("Properties") or {})
        arguments = {name: str(props[prop]) for prop, name in _KEY_PROPERTIES.items() if prop in props}
        if isinstance(props.get("KeyPolicy"), dict | str):
            policy = props["KeyPolicy"]
            arguments["Policy"] = policy if isinstance(policy, str) else json.dumps(policy)
        key_id = str(client.create_key(**arguments)["KeyMetadata"]["KeyId"])
        if path is not None:
            if logical_id in kept:
                key_id = _restore(key_id, kept[logical_id])
            else:
                material = base64.b64encode(_backend().keys[key_id].key_material).decode("ascii")
                kept[logical_id] = {"id": key_id, "material": material}
                changed = True
        if str(props.get("EnableKeyRotation")).lower() == "true":
            client.enable_key_rotation(KeyId=key_id)
        created.key_ids.append(key_id)
        resolver.names[logical_id] = key_id
        resolver.arns[logical_id] = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"
    if path is not None and changed:
        try:
            _write(path, kept)
        except OSError as error:  # a data directory problem, not the port's (``python -m dora_local``)
            raise RuntimeError(f"{path} cannot be written ({error}): the secrets key would not be kept") from None
    for logical_id, resource in resources("AWS::KMS::Alias", doc).items():
        props = resolver.resolve(resource.get("Properties") or {})
        name = str(props["AliasName"])
        client.create_alias(AliasName=name, TargetKeyId=str(props["TargetKeyId"]))
        created.aliases.append(name)
        resolver.names[logical_id] = name
        resolver.arns[logical_id] = f"arn:aws:kms:{REGION}:{ACCOUNT}:{name}"
    return created


def delete(created: Created, client: Any) -> None:
    """Remove what :func:`create` made (moto's state outlives its server in this process): aliases through
    the API, keys from the backend at once (the API only schedules a deletion days ahead). Best effort."""
    for name in reversed(created.aliases):
        try:
            client.delete_alias(AliasName=name)
        except Exception:  # best effort: the server stops anyway
            print(f"dora_local: could not delete KMS alias {name} from moto", file=sys.stderr)
    for key_id in reversed(created.key_ids):
        _backend().delete_key(key_id)
    created.aliases.clear()
    created.key_ids.clear()

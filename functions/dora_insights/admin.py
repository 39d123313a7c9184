"""Admin command: bootstrap a deployed stack straight against its table.

    TABLE_NAME=dora-insights-prod python -m dora_insights.admin create-space --name "Payments"
    TABLE_NAME=dora-insights-prod python -m dora_insights.admin create-key --space Spaces-1 \\
        --name ci --scopes deployments:write,deployments:read
    TABLE_NAME=dora-insights-prod python -m dora_insights.admin create-key --space Spaces-1 --name ops --scopes admin

    printf %s "$GITHUB_WEBHOOK_SECRET" | TABLE_NAME=dora-insights-prod SECRETS_KEY_ARN=arn:aws:kms:... \
        python -m dora_insights.admin set-webhook-secret --space Spaces-1

Uses the ordinary AWS credential chain (profile, SSO, environment). The key is printed once.
``set-webhook-secret`` stores the GitHub webhook secret encrypted with the stack's KMS key (the stack output
``SecretsKeyArn``, given as ``SECRETS_KEY_ARN`` or ``--secrets-key``): the credentials need ``kms:Encrypt`` on it.
The secret is read from standard input (typed without echo at a terminal), so that it is not in the
process's arguments, which other users of the machine see (``ps``); ``--secret`` still takes it inline.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import ValidationError

from dora_insights.config import get_settings
from dora_insights.dal.secrets import KmsSecretBox
from dora_insights.dal.store import Store
from dora_insights.dialects.native_admin import ApiKeyIn, SpaceIn, WebhookSecretIn
from dora_insights.errors import DoraError
from dora_insights.logic import admin

# What the routes take as a space id (``handlers.params.SpaceId``).
_SPACE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _space_id(value: str) -> str:
    if _SPACE_ID.fullmatch(value) is None:
        raise ValueError(f"--space: '{value[:80]}' is not a space id (e.g. Spaces-1)")
    return value


def _problems(error: ValidationError) -> str:
    """The API's 400 text of a validation error: each field named as the command's option."""
    return "; ".join(
        f"--{'-'.join(str(p) for p in e['loc'][:1]).replace('_', '-')}: {e['msg']}" for e in error.errors()
    )


def _secret_from_stdin() -> str:
    """The secret from standard input: typed at a terminal without echo, else its first line (a pipe or a
    file), without the line end ``echo`` adds."""
    if sys.stdin.isatty():
        return getpass.getpass("GitHub webhook secret: ")
    return sys.stdin.readline().rstrip("\r\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dora_insights.admin", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    space = commands.add_parser("create-space", help="create a space Spaces-N")
    space.add_argument("--name", required=True)
    space.add_argument("--default-environment", default=None)
    key = commands.add_parser("create-key", help="create an API key in a space (printed once)")
    key.add_argument("--space", required=True, help="space id, e.g. Spaces-1")
    key.add_argument("--name", required=True)
    key.add_argument("--scopes", required=True, help="comma-separated scopes, e.g. deployments:write,admin")
    key.add_argument("--user", default=None, help="person the key acts for (PostHog created_by, views)")
    secret = commands.add_parser("set-webhook-secret", help="set a space's GitHub webhook secret")
    secret.add_argument("--space", required=True)
    secret.add_argument(
        "--secret",
        default=None,
        help="the secret inline (visible to other users in ps); default: read from standard input",
    )
    secret.add_argument(
        "--secrets-key",
        default=None,
        help="ARN of the stack's secrets key (output SecretsKeyArn); default: SECRETS_KEY_ARN",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one admin command; prints JSON, exits non-zero with a message on error."""
    parser = _parser()
    args = parser.parse_args(argv)
    settings = get_settings()
    store = Store(settings.table_name)
    now = datetime.now(UTC)
    try:
        # The API's own request models: the command stores nothing the routes would refuse.
        if args.command == "create-space":
            body = SpaceIn.model_validate({"name": args.name, "default_environment": args.default_environment})
            space = admin.create_space(store, body.name, now, default_environment=body.default_environment)
            print(json.dumps({"id": space.id, "name": space.name}))
        elif args.command == "create-key":
            space_id = _space_id(args.space)
            wanted = ApiKeyIn.model_validate(
                {
                    "name": args.name,
                    "scopes": [s.strip() for s in args.scopes.split(",") if s.strip()],
                    "user": args.user,
                }
            )
            scopes = admin.validate_scopes(wanted.scopes, creator_is_admin=True)
            record, key = admin.create_api_key(store, space_id, wanted.name, scopes, now, user=wanted.user)
            print(json.dumps({"id": record.id, "name": record.name, "scopes": list(record.scopes), "key": key}))
        else:
            space_id = _space_id(args.space)
            given = args.secret if args.secret is not None else _secret_from_stdin()
            wanted_secret = WebhookSecretIn.model_validate({"secret": given})  # 8-256 characters, as the route
            key_arn = args.secrets_key or settings.secrets_key_arn
            if not key_arn:
                parser.error(
                    "set-webhook-secret needs the stack's secrets key: --secrets-key or SECRETS_KEY_ARN"
                    " (the stack output SecretsKeyArn)"
                )
            admin.set_webhook_secret(store, KmsSecretBox(key_arn), space_id, wanted_secret.secret)
            print(json.dumps({"space_id": space_id, "configured": True}))
    except ValidationError as error:
        print(f"error: {_problems(error)}", file=sys.stderr)
        return 1
    except (DoraError, ValueError) as error:
        print(f"error: {getattr(error, 'message', None) or error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Command-line flags for a client's policy, shared by `clients add` and `clients update`.

Flags merge into the stored policy: map flags (`--alias`, `--default`, `--force`,
`--upstream-header`) set one key, list flags (`--allow-model`, `--strip`, `--fallback`) add one
item, `--unset NAME` drops a key from every map, `--reset-policy` starts from an empty policy,
and `--policy-file FILE` (JSON or YAML) replaces the policy before the other flags apply.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import orjson

from gateway.documents import read_document
from gateway.errors import InvalidRequestError, PolicyError
from gateway.rewrite import MODES, SYSTEM_PROMPT_MODES, ClientPolicy
from gateway.store.records import ClientRecord

_MAPS = ("aliases", "defaults", "forced", "upstream_headers")


def _pair(value: str) -> tuple[str, str]:
    name, sep, rest = value.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME=VALUE")
    return name.strip(), rest


def _json_value(text: str) -> Any:
    """`0.2` -> 0.2, `true` -> True, `{"a":1}` -> dict; anything else stays a string."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("policy (see docs/policies.md)")
    add = group.add_argument
    add("--policy-file", type=Path, metavar="FILE", help="JSON or YAML policy; replaces it")
    add("--reset-policy", action="store_true", help="start from an empty policy")
    add("--mode", choices=MODES, help="passthrough (default) or managed (tool plugins)")
    add("--alias", type=_pair, action="append", metavar="ALIAS=MODEL", help="repeatable")
    add("--allow-model", action="append", metavar="MODEL", help="refuse others (repeatable)")
    add("--default", type=_pair, action="append", metavar="PARAM=JSON", help="if left out")
    add("--force", type=_pair, action="append", metavar="PARAM=JSON", help="always this value")
    add("--max-tokens-ceiling", type=int, metavar="N", help="0 removes the ceiling")
    add("--strip", action="append", metavar="PARAM", help="drop from requests (repeatable)")
    add("--system-prompt", metavar="TEXT", help="empty string removes it")
    add("--system-prompt-mode", choices=SYSTEM_PROMPT_MODES)
    add("--upstream-header", type=_pair, action="append", metavar="NAME=VALUE")
    add("--fallback", action="append", metavar="URL", help="fallback upstream (repeatable)")
    add("--fallback-key-env", metavar="VAR", help="key variable for the --fallback URLs")
    add("--retries", type=int, metavar="N", help="retries at each upstream")
    add("--max-hops", type=int, metavar="N", help="managed mode: model calls per request")
    add("--azure-api-version", metavar="VERSION")
    add("--unset", action="append", metavar="NAME", help="drop NAME from aliases/defaults/...")


def read_policy_file(path: Path) -> dict[str, Any]:
    return read_document(path, "policy fields")


def policy_from_arguments(current: ClientPolicy, args: argparse.Namespace) -> ClientPolicy:
    """`current` with the flags in `args` applied, checked as a whole."""
    base: dict[str, Any] = {} if args.reset_policy else current.to_dict()
    if args.policy_file is not None:
        keep_plugins = base.get("plugins", [])
        base = read_policy_file(args.policy_file)
        base.setdefault("plugins", keep_plugins)
        ClientPolicy.from_dict(base)  # unknown keys in a file are a mistake: say so
    for name in _MAPS:
        base[name] = dict(base.get(name) or {})
    for name in args.unset or ():
        for mapping in _MAPS:
            base[mapping].pop(name, None)
    for flag, mapping, convert in (
        (args.alias, "aliases", str),
        (args.default, "defaults", _json_value),
        (args.force, "forced", _json_value),
        (args.upstream_header, "upstream_headers", str),
    ):
        for name, value in flag or ():
            base[mapping][name] = convert(value)
    for flag, listing in ((args.allow_model, "allowed_models"), (args.strip, "strip")):
        if flag:
            base[listing] = list(dict.fromkeys([*(base.get(listing) or ()), *flag]))
    if args.fallback:
        target = {"key_env": args.fallback_key_env or ""}
        base["fallbacks"] = [
            *(base.get("fallbacks") or ()),
            *({**target, "url": u} for u in args.fallback),
        ]
    simple = {
        "mode": args.mode,
        "system_prompt": args.system_prompt,
        "system_prompt_mode": args.system_prompt_mode,
        "retries": args.retries,
        "max_hops": args.max_hops,
        "azure_api_version": args.azure_api_version,
    }
    base.update({key: value for key, value in simple.items() if value is not None})
    if args.max_tokens_ceiling is not None:
        base["max_tokens_ceiling"] = args.max_tokens_ceiling or None
    return ClientPolicy.from_dict(base)


def apply_policy_arguments(record: ClientRecord, args: argparse.Namespace) -> ClientRecord:
    try:
        policy = policy_from_arguments(record.policy, args)
    except PolicyError as exc:
        raise InvalidRequestError(f"policy: {exc}") from exc
    return dataclasses.replace(record, policy=policy)

"""The `memex` command line. Every failure is one line on stderr and a non-zero exit; --debug
shows the traceback."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.errors import ConfigError, InvalidInput, MemexError, NotFound
from core.ranking import MODES

if TYPE_CHECKING:
    from core.db import Database
    from core.models import ApiKey

EXIT_ERROR = 1
EXIT_USAGE = 2


def _json_default(value: Any) -> Any:
    if isinstance(value, (UUID, Path)):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(value: Any) -> None:
    print(json.dumps(value, default=_json_default, ensure_ascii=False, indent=2))


@dataclass(frozen=True)
class Scope:
    """What --tenant/--user/--store resolve to."""

    svc: Any  # MemoryService
    tenant: Any
    user: Any
    store: Any


def resolve_scope(args: argparse.Namespace, *, create: bool = False) -> Scope:
    from core.admin import find_tenant
    from core.db import get_database
    from core.service import MemoryService

    db = get_database()
    create = create and args.create
    if create:  # every name checked before anything is created: a bad store name leaves no new tenant behind
        _check_names(args)
    try:
        tenant = find_tenant(db, args.tenant, create=create)
        svc = MemoryService(db, tenant.id, actor="cli", interface="cli")
        user = svc.find_user(args.user, create=create)
        store = svc.find_store(user.id, args.store)
        if store is None and not create:
            raise NotFound(f"user {user.name!r} has no store {args.store!r}")
    except NotFound as exc:
        if "create" in args and not args.create:  # the hint only where the command has the option
            raise NotFound(f"{exc} (pass --create to create it)") from None
        raise
    if store is None:
        store = svc.get_or_create_store(user.id, args.store, args.embedding_model)
    elif getattr(args, "embedding_model", None) and args.embedding_model != store.embedding_model:
        raise InvalidInput(
            f"store {store.store_name!r} already uses {store.embedding_model}; --embedding-model applies only to a store created now"
        )
    return Scope(svc, tenant, user, store)


def _check_names(args: argparse.Namespace) -> None:
    """The tenant, user and store names a command would create, checked before it creates any."""
    from core import validation

    for value, what in ((args.tenant, "tenant name"), (args.user, "user name")):
        if validation.maybe_uuid(value) is None:
            validation.label(value, what, 100)
    validation.label(args.store, "store name", 100)


@contextmanager
def progress_bar(total_label: str) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar on stderr driven by (done, total) callbacks."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit=total_label, file=sys.stderr, leave=False, disable=None)
        bar.total, bar.n = total, done
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


# Commands -------------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> None:
    from core.db import Database

    applied = Database.from_settings().migrate()
    print(f"applied {', '.join(applied)}" if applied else "database is up to date")


def cmd_demo(args: argparse.Namespace) -> None:
    from core.db import get_database
    from core.demo import database_is_empty, load_demo

    db = get_database()
    if args.if_empty and not database_is_empty(db):
        print("database already holds tenants; demo not loaded")
        return
    with progress_bar("memories") as progress:
        report = load_demo(db, progress=progress)
    print(
        f"demo loaded: {report.tenants} tenants, {report.users} users, {report.stores} stores,"
        f" {report.memories} memories, {report.relationships} relationships, {report.searches} logged searches"
    )


def cmd_import(args: argparse.Namespace) -> None:
    from core import validation
    from core.admin import find_tenant
    from core.config import get_settings
    from core.db import get_database
    from core.embeddings import resolve_model
    from core.jsonl import ParsedFile, parse_chunks, parse_jsonl, refuse_bad_lines
    from core.models import StoreName
    from core.service import MemoryService

    validation.limit(args.batch_size, "batch size", 10_000)
    path = Path(args.file)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    data = path.read_bytes()
    try:
        existing: Scope | None = resolve_scope(args)
    except NotFound:
        if not args.create:
            raise
        existing = None
    dim = existing.store.embedding_dim if existing else resolve_model(args.embedding_model or get_settings().default_embedding_model)[1]
    # The file is read a chunk at a time while the previous chunk is written, all in one
    # transaction that also creates a missing user and store: a bad line rolls it all back.
    chunks: Iterable[ParsedFile] = parse_chunks(data, dim)
    if existing is not None:
        svc, target = existing.svc, existing.store.id
    else:
        _check_names(args)
        db = get_database()
        try:
            tenant = find_tenant(db, args.tenant)
        except NotFound:  # a tenant is created (outside that transaction) only for a file that checks out
            whole = parse_jsonl(data, dim)
            if not args.skip_bad:
                whole.fail_if_bad()
                refuse_bad_lines(_unknown_relationship_ends(whole))
            chunks, tenant = [whole], find_tenant(db, args.tenant, create=True)
        svc, target = MemoryService(db, tenant.id, actor="cli", interface="cli"), StoreName(args.user, args.store, args.embedding_model)
    with progress_bar("memories") as progress:
        report = svc.import_memories(
            target, chunks, skip_bad=args.skip_bad, new_ids=args.new_ids, batch_size=args.batch_size, progress=progress
        )
    scope = existing or resolve_scope(args)
    for problem in report.skipped:
        print(f"skipped {problem}", file=sys.stderr)
    print(
        f"imported {report.memories} memories and {report.relationships} relationships into"
        f" {scope.tenant.name}/{scope.user.name}/{scope.store.store_name}"
        + (f"; skipped {len(report.skipped)} bad lines" if report.skipped else "")
    )
    if args.index and report.memories:
        _index(scope)
    elif report.memories and (pending := scope.svc.pending_index(scope.store.id)):
        print(
            f"{pending} memories of this store are searched exactly until they are in its HNSW index:"
            " `memex index` puts them there (so does a running explorer, in the background)",
            file=sys.stderr,
        )


def cmd_index(args: argparse.Namespace) -> None:
    _index(resolve_scope(args))


def _index(scope: Scope) -> None:
    """Put the store's memories that bulk writes left out of the HNSW graph into it (big stores only)."""
    with progress_bar("memories") as progress:
        done = scope.svc.index_pending(scope.store.id, progress=progress)
    print(f"indexed {done} memories of {scope.tenant.name}/{scope.user.name}/{scope.store.store_name}" if done else "nothing to index")


def _unknown_relationship_ends(parsed: Any) -> list[str]:
    """For a tenant about to be created: relationship ends must be memories of the file."""
    from core.jsonl import split_relationships

    return split_relationships(parsed.relationships, {i for i in parsed.lines.id if i is not None})[1]


def cmd_export(args: argparse.Namespace) -> None:
    scope = resolve_scope(args)
    lines = scope.svc.export_lines(scope.store.id, embeddings=not args.no_embeddings)
    if args.file == "-":
        for line in lines:
            sys.stdout.write(line + "\n")
        return
    path = Path(args.file)
    tmp = path.with_name(path.name + ".partial")
    count = 0
    try:
        out = tmp.open("w", encoding="utf-8")
    except OSError as exc:  # checked before any line is read: no directory, no permission
        raise InvalidInput(f"{path}: cannot write there ({exc.strerror or exc})") from None
    with out:
        for line in lines:
            out.write(line + "\n")
            count += 1
    tmp.replace(path)  # a failed export never leaves a truncated file under the real name
    print(f"exported {count} lines to {path}", file=sys.stderr)


def cmd_search(args: argparse.Namespace) -> None:
    scope = resolve_scope(args)
    results = scope.svc.search_memories(
        scope.store.id,
        args.query,
        limit=args.limit,
        min_similarity=args.min_similarity,
        record_access=not args.no_record_access,
        memory_types=args.type or (),
        sources=args.source or (),
        mode=args.mode,
    )
    if args.json:
        print_json([r.to_dict() for r in results])
        return
    if not results:
        print(f"no memory at or above similarity {args.min_similarity}", file=sys.stderr)
    for rank, r in enumerate(results, start=1):
        content = " ".join(r.memory.content.split())
        print(f"{rank:>3}  {r.score:.3f}  {r.similarity:.3f}  {r.memory.memory_type:<12} {content[:100]}")


def cmd_stats(args: argparse.Namespace) -> None:
    scope = resolve_scope(args)
    stats = scope.svc.store_stats(scope.store.id)
    if args.json:
        print_json(asdict(stats))
        return
    print(f"{scope.tenant.name}/{scope.user.name}/{scope.store.store_name} ({scope.store.embedding_model}, {scope.store.embedding_dim}d)")
    print(f"memories {stats.total}: {stats.live} live, {stats.expired} expired, {stats.archived} archived")
    print("by type: " + ", ".join(f"{k} {v}" for k, v in stats.by_type.items()))
    print("relationships: " + (", ".join(f"{k} {v}" for k, v in stats.relationships_by_type.items()) or "none"))


def _tenant_service(tenant: str) -> Any:
    """The CLI's MemoryService for a tenant named or given by id."""
    from core.admin import find_tenant
    from core.db import get_database
    from core.service import MemoryService

    db = get_database()
    return MemoryService(db, find_tenant(db, tenant).id, actor="cli", interface="cli")


def _entry_json(entry: Any, *, full: bool) -> dict[str, Any]:
    out = {
        "id": entry.id,
        "at": entry.at,
        "store_id": entry.store_id,
        "interface": entry.interface,
        "actor": entry.actor,
        "key_id": entry.key_id,
        "key_name": entry.key_name,
        "query": entry.query,
        "mode": entry.mode,
        "result_count": entry.result_count,
        "latency_ms": entry.latency_ms,
        "results": [
            {
                "id": r["id"],
                "rank": r["rank"],
                "score": r["score"],
                **({"similarity": r["similarity"], "breakdown": r.get("breakdown")} if full else {}),
            }
            for r in entry.results
        ],
    }
    if full:
        out.update(params=entry.params, model=entry.model, near_misses=entry.near_misses)
    return out


def cmd_log(args: argparse.Namespace) -> None:
    from core.admin import tenant_of_retrieval
    from core.db import get_database
    from core.service import MemoryService

    if args.action == "prune":
        return _log_prune(args)
    if args.action == "list":
        if not args.tenant or not args.user:
            raise InvalidInput("memex log list needs --tenant and --user")
        svc = _tenant_service(args.tenant)
        user = svc.find_user(args.user)
        store = None
        if args.store:
            store = svc.find_store(user.id, args.store)
            if store is None:
                raise NotFound(f"user {user.name!r} has no store {args.store!r}")
        page = svc.retrievals(
            store.id if store else None,
            user_id=user.id,
            since=args.since,
            contains=args.contains,
            empty=True if args.empty else None,
            limit=args.limit,
        )
        if args.json:
            print_json([_entry_json(e, full=False) for e in page.entries])
            return
        print(
            f"{page.total} logged searches" + (f", the newest {len(page.entries)}" if page.total > len(page.entries) else ""),
            file=sys.stderr,
        )
        for e in page.entries:
            top = f"{e.results[0]['score']:.3f}" if e.results else "  -  "
            print(
                f"{e.id}  {e.at:%Y-%m-%d %H:%M}  {e.interface:<8} {e.result_count:>3} results  top {top}  {e.latency_ms:>7.1f} ms  {' '.join(e.query.split())[:80]}"
            )
        return
    entry_id = _need(args.id, "the log entry's id")
    db = get_database()
    tenant = tenant_of_retrieval(db, entry_id)
    svc = MemoryService(db, tenant.id, actor="cli", interface="cli")
    if args.action == "show":
        entry = svc.retrieval(entry_id)
        if args.json:
            print_json(_entry_json(entry, full=True))
            return
        print(
            f"{entry.at:%Y-%m-%d %H:%M:%S %Z} by {entry.actor} ({entry.interface}), {entry.mode} search, {entry.latency_ms:.1f} ms, model {entry.model}"
        )
        print(f"query: {entry.query or '(a query vector)'}")
        print(f"settings: {json.dumps(entry.params)}")
        memories = {m.id: m for m in svc.get_memories([UUID(r["id"]) for r in entry.results + entry.near_misses])}
        for r in entry.results:
            memory = memories.get(UUID(r["id"]))
            print(f"  {r['rank']:>3}  {r['score']:.3f}  {' '.join(memory.content.split())[:90] if memory else '(gone since)'}")
        for r in entry.near_misses:
            memory = memories.get(UUID(r["id"]))
            print(f"  cut  {r['similarity']:.3f}  {r['reason']}: {' '.join(memory.content.split())[:70] if memory else '(gone since)'}")
    elif args.action == "replay":
        replay = svc.replay(entry_id)
        if args.json:
            print_json(
                {
                    "entry": entry_id,
                    "same": replay.same,
                    "model_changed": replay.model_changed,
                    "then": [{"id": r["id"], "rank": r["rank"], "score": r["score"]} for r in replay.entry.results],
                    "now": [{"id": r.memory.id, "rank": n, "score": r.score} for n, r in enumerate(replay.now, start=1)],
                    "differences": [asdict(d) for d in replay.differences],
                }
            )
            return
        print("the same answer as then" if replay.same else f"{len(replay.differences)} differences from then:")
        for d in replay.differences:
            print(f"  {d.kind:<16} {d.memory_id}  {d.reason}")


def _log_prune(args: argparse.Namespace) -> None:
    from core.admin import find_tenant, list_tenants
    from core.db import get_database
    from core.service import MemoryService

    db = get_database()
    tenants = [find_tenant(db, args.tenant)] if args.tenant else list_tenants(db)
    removed = sum(MemoryService(db, t.id, actor="cli", interface="cli").prune_log() for t in tenants)
    print(f"removed {removed} log entries past their stores' retention")


def cmd_history(args: argparse.Namespace) -> None:
    svc = _tenant_service(args.tenant)
    events = svc.get_memory_history(args.memory_id)
    if args.json:
        print_json([asdict(e) for e in events])
        return
    for e in events:
        what = ", ".join(sorted(e.changes)) if e.changes else ""
        into = f" into {e.merged_into}" if e.merged_into else ""
        print(f"v{e.version:<3} {e.at:%Y-%m-%d %H:%M:%S}  {e.event:<10}{into} by {e.actor}" + (f"  ({what})" if what else ""))


def cmd_restore(args: argparse.Namespace) -> None:
    svc = _tenant_service(args.tenant)
    memory = svc.restore_memory(args.memory_id, args.version)
    print(
        f"restored memory {memory.id}"
        + (f" to version {args.version}" if args.version else " (its last change undone)")
        + f": {' '.join(memory.content.split())[:80]}"
    )


def cmd_forget(args: argparse.Namespace) -> None:
    svc = _tenant_service(args.tenant)
    if not args.yes:
        raise InvalidInput("purging removes the memory, its history and every mention in the log for good; add --yes to confirm")
    report = svc.purge_memory(args.memory_id)
    print(
        f"purged memory {args.memory_id}: {report.memories} memory, {report.history_events} history events, "
        f"{report.log_entries} log entries cleaned"
    )


def cmd_purge(args: argparse.Namespace) -> None:
    scope = resolve_scope(args)
    print(f"deleted {scope.svc.purge_expired(scope.store.id)} expired memories")


def cmd_eval(args: argparse.Namespace) -> None:
    from core.evaluation import configs_for, load_cases

    path = Path(args.cases)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    cases = load_cases(path.read_bytes())
    ks = _int_list(args.k, "--k")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    policies = [p.strip() for p in args.superseded.split(",") if p.strip()]
    configs = configs_for(modes, args.min_similarity, policies)
    scope = resolve_scope(args)
    with progress_bar("searches") as progress:
        reports = scope.svc.evaluate(scope.store.id, cases, configs, ks, progress=progress)
    if args.json:
        print(json.dumps({r.name: r.metrics for r in reports}))
        return
    keys = [k for k in reports[0].metrics if k != "n"]
    width = max(10, *(len(r.name) + 1 for r in reports))
    print(f"{len(cases)} cases, store {scope.tenant.name}/{scope.user.name}/{scope.store.store_name}")
    print(f"{'mode':<{width}}" + "".join(f"{k:>10}" for k in keys))
    for r in reports:
        print(f"{r.name:<{width}}" + "".join(f"{r.metrics[k]:>10.3f}" for k in keys))
    kinds = list(reports[0].by_kind())
    if len(kinds) > 1:
        recall = f"recall@{5 if 5 in ks else max(ks)}"  # the metric people quote, or the deepest asked for
        print(f"\n{recall} by kind of case")
        print(f"{'mode':<{width}}" + "".join(f"{k[:12]:>13}" for k in kinds))
        for r in reports:
            by_kind = r.by_kind()
            print(f"{r.name:<{width}}" + "".join(f"{by_kind[k][recall]:>13.3f}" for k in kinds))
    for r in reports if args.worst else []:
        print(f"\nworst cases, {r.name}:")
        for c in r.worst(args.worst):
            ranks = ", ".join("-" if rank is None else str(rank) for rank in c.expected_ranks.values())
            print(f"  ndcg {c.metrics['ndcg@10']:.2f}  expected at ranks [{ranks}]  {c.case.query}")


def _int_list(value: str, option: str) -> list[int]:
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise InvalidInput(f"{option} takes whole numbers separated by commas, not {value!r}") from None


def cmd_tenants(args: argparse.Namespace) -> None:
    from core import admin
    from core.db import get_database

    db = get_database()
    if args.action == "list":
        for t in admin.list_tenants(db):
            print(f"{t.id}  {t.name}")
    elif args.action == "create":
        t = admin.create_tenant(db, _need(args.name, "a tenant name"))
        print(f"{t.id}  {t.name}")
    elif args.action == "rename":
        t = admin.find_tenant(db, _need(args.tenant, "--tenant"))
        print(admin.rename_tenant(db, t.id, _need(args.name, "the new name")).name)
    elif args.action == "delete":
        t = admin.find_tenant(db, _need(args.tenant, "--tenant"))
        if not args.yes:
            raise InvalidInput(f"deleting tenant {t.name!r} deletes all its memories; add --yes to confirm")
        admin.delete_tenant(db, t.id)
        print(f"deleted tenant {t.name}")


def cmd_users(args: argparse.Namespace) -> None:
    from core.admin import find_tenant
    from core.db import get_database
    from core.service import MemoryService

    db = get_database()
    svc = MemoryService(db, find_tenant(db, args.tenant).id, actor="cli", interface="cli")
    if args.action == "list":
        for u in svc.list_users():
            stores = ", ".join(f"{s.store_name} ({s.total_memories})" for s in svc.list_stores(u.id))
            print(f"{u.id}  {u.name:<20} {stores}")
    elif args.action == "create":
        u = svc.create_user(_need(args.name, "a user name"))
        print(f"{u.id}  {u.name}")


def cmd_keys(args: argparse.Namespace) -> None:
    from core import admin
    from core.db import get_database
    from core.keys import checked_options
    from core.service import MemoryService

    db = get_database()
    if args.action == "create":
        if args.store and not args.user:
            raise InvalidInput("--store needs --user: store names are per user")
        checked_options(args.name or "", args.expires_in_days)  # before a tenant, user or store is made for it
        tenant = admin.find_tenant(db, _need(args.tenant, "--tenant"), create=True)
        svc = MemoryService(db, tenant.id, actor="cli", interface="cli")
        user = store = None
        if args.user:
            user = svc.find_user(args.user, create=True)
        if args.store:
            assert user is not None
            store = svc.find_store(user.id, args.store) or svc.get_or_create_store(user.id, args.store)
        record, key = admin.create_key(
            db,
            tenant.id,
            name=args.name or "",
            user_id=user.id if user else None,
            store_id=store.id if store else None,
            read_only=args.read_only,
            expires_in_days=args.expires_in_days,
        )
        described = {
            "id": record.id,
            "key": key,
            "prefix": record.prefix,
            "tenant": tenant.name,
            "tenant_id": tenant.id,
            "name": record.name,
            "user": user.name if user else None,
            "store": store.store_name if store else None,
            "read_only": record.read_only,
            "expires_at": record.expires_at,
        }
        if args.json:
            print(json.dumps(described, default=_json_default))
            return
        print(key)
        print(
            f"API key {record.id} for tenant {tenant.name}"
            + (f", user {user.name}" if user else "")
            + (f", store {store.store_name}" if store else "")
            + (", read-only" if record.read_only else "")
            + (f", expires {record.expires_at:%Y-%m-%d}" if record.expires_at else "")
            + ". It is shown only now: keep it in a secret store.",
            file=sys.stderr,
        )
    elif args.action == "list":
        tenant_id = admin.find_tenant(db, args.tenant).id if args.tenant else None
        keys = admin.list_keys(db, tenant_id)
        if args.json:
            print_json([asdict(k) for k in keys])
            return
        scopes = _key_scopes(db, keys)
        for k in keys:
            state = (
                "revoked" if k.revoked_at else "expired" if k.expires_at and k.expires_at <= datetime.now(k.expires_at.tzinfo) else "active"
            )
            print(f"{k.id}  {k.prefix}…  {state:<8} {scopes[k.id]}  {'read-only ' if k.read_only else ''}{k.name}".rstrip())
    elif args.action == "revoke":
        record = admin.revoke_key(db, _need(args.id, "the key's id"))
        print(f"revoked API key {record.id} ({record.prefix}…)")


def _key_scopes(db: Database, keys: list[ApiKey]) -> dict[UUID, str]:
    """What each key opens, by name: "tenant", "tenant / user" or "tenant / user / store" (the
    names read in each tenant that has a bound key, one tenant at a time as RLS allows)."""
    from core import admin
    from core.service import MemoryService

    tenants = {t.id: t.name for t in admin.list_tenants(db)}
    names: dict[UUID, str] = {}
    for tenant_id in {k.tenant_id for k in keys if k.user_id or k.store_id}:
        svc = MemoryService(db, tenant_id)
        names |= {u.id: u.name for u in svc.list_users()} | {s.id: s.store_name for s in svc.list_stores()}
    return {
        k.id: " / ".join([tenants.get(k.tenant_id, str(k.tenant_id))] + [names.get(i, str(i)) for i in (k.user_id, k.store_id) if i])
        for k in keys
    }


def _read_password(prompt: str) -> str:
    """A password from stdin (a pipe), or typed without echo at a terminal."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


def cmd_analysts(args: argparse.Namespace) -> None:
    from core import admin
    from core.db import get_database

    db = get_database()
    if args.action == "list":
        found = admin.list_analysts(db)
        if args.json:
            print_json(
                [
                    {
                        "email": a.email,
                        "operator": a.operator,
                        "local_account": a.local_account,
                        "memberships": [{"tenant": m.tenant_name, "tenant_id": m.tenant_id, "role": m.role} for m in a.memberships],
                    }
                    for a in found
                ]
            )
            return
        for a in found:
            roles = ", ".join(f"{m.tenant_name} ({m.role})" for m in a.memberships) or "no tenant"
            print(f"{a.email:<40} {'operator ' if a.operator else ''}{'local' if a.local_account else 'OpenID Connect'}: {roles}")
        return
    email = _need(args.email, "the analyst's email")
    if args.action == "add":
        password = None if args.no_password else _read_password(f"password for {email}: ")
        made = admin.add_analyst(db, email, password, operator=args.operator)
        print(
            f"analyst {made.email} added"
            + (" (operator)" if made.operator else "")
            + ("" if made.local_account else ", signing in by OpenID Connect")
        )
    elif args.action == "passwd":
        admin.set_analyst(db, email, password=_read_password(f"new password for {email}: "))
        print(f"password of {email} changed")
    elif args.action == "operator":
        admin.set_analyst(db, email, operator=not args.off)
        print(f"{email} is {'no longer ' if args.off else ''}an operator")
    elif args.action == "grant":
        tenant = admin.find_tenant(db, _need(args.tenant, "--tenant"))
        admin.grant(db, email, tenant.id, _need(args.role, "--role"))
        print(f"{email} may open {tenant.name} as {args.role}")
    elif args.action == "revoke":
        tenant = admin.find_tenant(db, _need(args.tenant, "--tenant"))
        admin.revoke(db, email, tenant.id)
        print(f"{email} may no longer open {tenant.name}")
    elif args.action == "remove":
        admin.remove_analyst(db, email)
        print(f"analyst {email} removed")


def cmd_serve(args: argparse.Namespace) -> None:
    from core import validation

    validation.limit(args.workers, "--workers", 64)
    validation.limit(args.port, "--port", 65_535)
    _require("fastapi", "uvicorn", "mcp", extra="api", purpose="memex serve")
    from core.api.serve import serve

    print(f"memex API: http://{args.host}:{args.port} (REST under /v1, docs at /docs, MCP at /mcp)", file=sys.stderr)
    serve(args.host, args.port, args.workers)


def cmd_mcp(args: argparse.Namespace) -> None:
    _require("mcp", extra="api", purpose="memex mcp")
    from core.api.serve import stdio

    code = stdio()
    if code:
        raise SystemExit(code)


def _require(*modules: str, extra: str, purpose: str) -> None:
    """A one-line error naming the extra to install when a module of it is missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"{purpose} needs the '{extra}' extra ({', '.join(missing)} missing): pip install 'memex[{extra}]'")


def _need(value: str | None, what: str) -> str:
    if not value:
        raise InvalidInput(f"this needs {what}")
    return value


# Parser ---------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage text is one --help away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _scope_options(parser: argparse.ArgumentParser, *, creating: bool = False) -> None:
    parser.add_argument("--tenant", required=True, help="tenant name or UUID")
    parser.add_argument("--user", required=True, help="user name or UUID")
    parser.add_argument("--store", default="default", help="store name (default: default)")
    if creating:
        parser.add_argument("--create", action="store_true", help="create a missing tenant, user or store")
        parser.add_argument("--embedding-model", help="embedding model of a store created now")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = _Parser(prog="memex", description="Persistent memory for AI agents.", parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, func: Callable[[argparse.Namespace], None], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(func=func)
        return p

    command("migrate", cmd_migrate, "apply pending database migrations")
    p = command("demo", cmd_demo, "load the demo data set (3 tenants, 376 memories, 343 relationships)")
    p.add_argument("--if-empty", action="store_true", help="only when the database has no tenant yet")

    p = command("import", cmd_import, "import memories and relationships from a JSONL file")
    p.add_argument("file")
    _scope_options(p, creating=True)
    p.add_argument("--skip-bad", action="store_true", help="skip bad lines (reported) instead of importing nothing")
    p.add_argument("--new-ids", action="store_true", help="give the file's memories new ids (copy into another store)")
    p.add_argument("--batch-size", type=int, default=256, help="memories without a vector per embedding request and transaction")
    p.add_argument("--index", action="store_true", help="wait until a big store's new rows are in its HNSW index (see memex index)")

    p = command("index", cmd_index, "put a big store's memories that imports left out of its HNSW index into it")
    _scope_options(p)

    p = command("export", cmd_export, "export a store as JSONL ('-' for stdout)")
    p.add_argument("file")
    _scope_options(p)
    p.add_argument("--no-embeddings", action="store_true", help="leave vectors out (import re-embeds)")

    p = command("search", cmd_search, "semantic search in a store")
    p.add_argument("query")
    _scope_options(p)
    p.add_argument("--limit", type=int, default=5)
    p.add_argument("--min-similarity", type=float, default=0.7, help="threshold of the vector side (default 0.7)")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="vector",
        help="vector (default, the seed's search), text (BM25), hybrid (the best measured), weighted",
    )
    p.add_argument("--type", action="append", help="only this memory type (repeatable)")
    p.add_argument("--source", action="append", help="only this source (repeatable)")
    p.add_argument("--no-record-access", action="store_true", help="do not count this search as an access")
    p.add_argument("--json", action="store_true", help="print results as a JSON list")

    p = command("stats", cmd_stats, "figures of a store")
    _scope_options(p)
    p.add_argument("--json", action="store_true")

    p = command("purge-expired", cmd_purge, "delete the expired memories of a store")
    _scope_options(p)

    p = command("eval", cmd_eval, "measure retrieval on cases: recall@k, hit@k, MRR, nDCG@10 per mode")
    p.add_argument("cases", help='JSONL: {"query": ..., "expected_ids": [...]} per line')
    _scope_options(p)
    p.add_argument("--modes", default="vector,text,hybrid,weighted", help="comma-separated search modes")
    p.add_argument("--k", default="1,5,10", help="cut-offs for recall@k and hit@k")
    p.add_argument("--min-similarity", type=float, default=0.0, help="threshold on the vector side (default 0)")
    p.add_argument(
        "--superseded",
        default="keep",
        help="what search does with memories a newer one updates or contradicts: keep, demote or skip; "
        "comma-separated to compare (each mode is run with each)",
    )
    p.add_argument("--worst", type=int, default=5, help="worst cases listed per mode")
    p.add_argument("--json", action="store_true", help="print one JSON object of metrics per mode, nothing else")

    p = command("tenants", cmd_tenants, "list, create, rename or delete tenants")
    p.add_argument("action", choices=["list", "create", "rename", "delete"])
    p.add_argument("name", nargs="?")
    p.add_argument("--tenant")
    p.add_argument("--yes", action="store_true")

    p = command("log", cmd_log, "the retrieval log: list, show or replay logged searches; prune past retention")
    p.add_argument("action", choices=["list", "show", "replay", "prune"])
    p.add_argument("id", nargs="?", help="a log entry's id (show, replay)")
    p.add_argument("--tenant", help="tenant name or UUID (list; prune: only this tenant, default every tenant)")
    p.add_argument("--user", help="user name or UUID (list)")
    p.add_argument("--store", help="only this store of the user (list; default: all the user's stores)")
    p.add_argument("--since", help="only searches from this time on (ISO 8601)")
    p.add_argument("--contains", help="only queries containing this text")
    p.add_argument("--empty", action="store_true", help="only searches that returned nothing")
    p.add_argument("--limit", type=int, default=100, help="newest entries listed (default 100)")
    p.add_argument("--json", action="store_true")

    p = command("history", cmd_history, "every recorded change of a memory")
    p.add_argument("memory_id")
    p.add_argument("--tenant", required=True)
    p.add_argument("--json", action="store_true")

    p = command("restore", cmd_restore, "bring a memory back to a version of its history (default: undo its last change)")
    p.add_argument("memory_id")
    p.add_argument("--tenant", required=True)
    p.add_argument("--version", type=int)

    p = command("forget", cmd_forget, "purge a memory: it, its history and its mentions in the log, for good")
    p.add_argument("memory_id")
    p.add_argument("--tenant", required=True)
    p.add_argument("--yes", action="store_true")

    p = command("keys", cmd_keys, "create, list or revoke API keys (a key decides its tenant)")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("id", nargs="?", help="the key's id (revoke)")
    p.add_argument("--tenant", help="tenant name or UUID (created if missing)")
    p.add_argument("--user", help="bind the key to this user (created if missing)")
    p.add_argument("--store", help="bind the key to this store of --user (created if missing)")
    p.add_argument("--read-only", action="store_true", help="the key may read and search, not write")
    p.add_argument("--expires-in-days", type=float, help="the key stops working after this many days")
    p.add_argument("--name", help="a label to tell keys apart")
    p.add_argument("--json", action="store_true", help="one JSON object (create) or list on stdout")

    p = command("analysts", cmd_analysts, "who may open which tenant in the explorer: accounts and memberships")
    p.add_argument("action", choices=["add", "grant", "revoke", "list", "passwd", "operator", "remove"])
    p.add_argument("email", nargs="?")
    p.add_argument("--tenant", help="tenant name or UUID (grant, revoke)")
    p.add_argument("--role", choices=["viewer", "editor", "admin"], help="viewer reads; editor also changes; admin also manages")
    p.add_argument("--operator", action="store_true", help="add: manages tenants, analysts and keys, opens every tenant")
    p.add_argument("--off", action="store_true", help="operator: take the flag away")
    p.add_argument("--no-password", action="store_true", help="add: signs in by OpenID Connect only (else the password is read from stdin)")
    p.add_argument("--json", action="store_true")

    p = command("serve", cmd_serve, "serve the HTTP API (/v1) and MCP (/mcp)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700)
    p.add_argument("--workers", type=int, default=1)

    command("mcp", cmd_mcp, "serve the MCP tools over stdio (the key in MEMEX_API_KEY)")

    p = command("users", cmd_users, "list or create the users of a tenant")
    p.add_argument("action", choices=["list", "create"])
    p.add_argument("name", nargs="?")
    p.add_argument("--tenant", required=True)

    from core import bench

    bench.add_command(command)
    return parser


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except MemexError as exc:
        if args.debug:
            raise
        print(f"memex: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("memex: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:
        if args.debug:
            raise
        print(f"memex: error: {type(exc).__name__}: {_one_line(exc)} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())

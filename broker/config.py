"""Broker settings: every option is a command-line flag and an environment variable.

The table ``OPTIONS`` is the single source: the command line, ``--help`` and the
README's options table are all generated from it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from broker.outbound import parse_networks
from broker.threadsched import THREAD_SCHEDULING
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.temporal import parse_duration

CORE_VERSIONS = ("1.3", "1.6", "1.7", "1.8", "1.9")
#: --auth: off (anyone who reaches the port may do anything), oidc (OpenID Connect
#: bearer tokens, and API keys when --api-keys names a file), api-keys (API keys only)
AUTH_MODES = ("off", "oidc", "api-keys")


def _bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _positive_int(text: str | int) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive integer: {text!r}")
    return value


def _positive_float(text: str | float) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"must be a positive number: {text!r}")
    return value


def _networks(text: str) -> str:
    parse_networks(text)  # ValueError names the bad item
    return text.strip()


def _core_version(text: str) -> str:
    version = text.strip().lstrip("v")
    if version not in CORE_VERSIONS:
        raise ValueError(f"core context version {text!r} not one of {', '.join(CORE_VERSIONS)}")
    return version


def _retention(text: str) -> str:
    """An ISO 8601 duration longer than zero (``P90D``), or "" for no limit."""
    text = text.strip()
    if text:
        try:
            duration = parse_duration(text, "the retention")
        except NgsiLdError as exc:
            raise ValueError(exc.detail) from None
        if duration.is_zero:
            raise ValueError("the temporal retention must be longer than zero")
    return text


def _auth_mode(text: str) -> str:
    mode = text.strip().lower()
    if mode not in AUTH_MODES:
        raise ValueError(f"--auth {text!r} not one of {', '.join(AUTH_MODES)}")
    return mode


def _names(text: str | Sequence[str]) -> tuple[str, ...]:
    """A repeatable option: each flag given, or one comma-separated environment value."""
    items = [text] if isinstance(text, str) else list(text)
    return tuple(part.strip() for item in items for part in item.split(",") if part.strip())


#: --event-loop: libuv's (uvloop, the default where it is installed) or asyncio's own
EVENT_LOOPS = ("uvloop", "asyncio")


def _event_loop(text: str) -> str:
    loop = text.strip().lower()
    if loop not in EVENT_LOOPS:
        raise ValueError(f"unknown event loop {text!r}; one of {', '.join(EVENT_LOOPS)}")
    return loop


def _thread_scheduling(text: str) -> str:
    kind = text.strip().lower()
    if kind not in THREAD_SCHEDULING:
        raise ValueError(f"unknown thread scheduling {text!r}; one of "
                         f"{', '.join(THREAD_SCHEDULING)}")
    return kind


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"unknown log level {text!r}")
    return level


@dataclass(frozen=True, slots=True)
class Option:
    name: str  # attribute of Settings
    flag: str
    env: str
    default: Any
    convert: Any
    help: str
    #: repeatable flag (the environment variable holds a comma-separated list)
    many: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("host", "--host", "NGSI_LD_HOST", "0.0.0.0", str, "address to listen on"),
    Option("port", "--port", "NGSI_LD_PORT", 1026, int, "TCP port to listen on (Orion-LD's 1026)"),
    Option(
        "store",
        "--store",
        "NGSI_LD_STORE",
        "sqlite:ngsi-ld-data/broker.db",
        str,
        "store URL: sqlite:relative/file.db or sqlite:///absolute/file.db (embedded, "
        "default), memory: (throw-away), mongodb://... (MongoDB backend)",
    ),
    Option(
        "core_context_version",
        "--core-context",
        "NGSI_LD_CORE_CONTEXT",
        "1.8",
        _core_version,
        "NGSI-LD core @context version: " + ", ".join(CORE_VERSIONS),
    ),
    Option(
        "default_page_size",
        "--default-page-size",
        "NGSI_LD_DEFAULT_PAGE_SIZE",
        20,
        _positive_int,
        "entities per page when a query gives no limit",
    ),
    Option(
        "max_page_size",
        "--max-page-size",
        "NGSI_LD_MAX_PAGE_SIZE",
        1000,
        _positive_int,
        "largest limit a query may ask for (more answers 403 TooManyResults)",
    ),
    Option(
        "max_body_size",
        "--max-body-size",
        "NGSI_LD_MAX_BODY_SIZE",
        8 * 1024 * 1024,
        _positive_int,
        "largest request body in bytes (more answers 413)",
    ),
    Option(
        "max_batch_size",
        "--max-batch-size",
        "NGSI_LD_MAX_BATCH_SIZE",
        1000,
        _positive_int,
        "most entities in one batch operation (more answers 400)",
    ),
    Option(
        "context_dir",
        "--context-dir",
        "NGSI_LD_CONTEXT_DIR",
        "",
        str,
        "directory of pre-loaded @context files for offline sites (index.json maps URL to file)",
    ),
    Option(
        "context_timeout",
        "--context-timeout",
        "NGSI_LD_CONTEXT_TIMEOUT",
        5.0,
        float,
        "seconds to wait for a remote @context",
    ),
    Option(
        "context_max_size",
        "--context-max-size",
        "NGSI_LD_CONTEXT_MAX_SIZE",
        1024 * 1024,
        _positive_int,
        "largest remote @context document in bytes",
    ),
    Option(
        "context_cache_size",
        "--context-cache-size",
        "NGSI_LD_CONTEXT_CACHE_SIZE",
        512,
        _positive_int,
        "compiled @contexts kept in memory",
    ),
    Option("log_level", "--log-level", "NGSI_LD_LOG_LEVEL", "INFO", _log_level, "log level"),
    Option("log_json", "--log-json", "NGSI_LD_LOG_JSON", False, _bool, "log as JSON lines"),
    Option(
        "multi_tenancy",
        "--multi-tenancy",
        "NGSI_LD_MULTI_TENANCY",
        True,
        _bool,
        "accept NGSILD-Tenant / Fiware-Service headers (off: 501 NoMultiTenantSupport)",
    ),
    Option(
        "cors_origin",
        "--cors-origin",
        "NGSI_LD_CORS_ORIGIN",
        "",
        str,
        "value of Access-Control-Allow-Origin (empty: CORS off; * allows any origin)",
    ),
    Option(
        "notification_timeout",
        "--notification-timeout",
        "NGSI_LD_NOTIFICATION_TIMEOUT",
        10.0,
        float,
        "seconds to wait for a notification endpoint (a subscription's endpoint.timeout wins)",
    ),
    Option(
        "forward_timeout",
        "--forward-timeout",
        "NGSI_LD_FORWARD_TIMEOUT",
        5.0,
        _positive_float,
        "seconds a request forwarded to a context source may take (a registration's "
        "management.timeout may shorten it)",
    ),
    Option(
        "notification_retries",
        "--notification-retries",
        "NGSI_LD_NOTIFICATION_RETRIES",
        2,
        int,
        "retries of a failed notification (timeouts, refused connections, 5xx)",
    ),
    Option(
        "notification_backoff",
        "--notification-backoff",
        "NGSI_LD_NOTIFICATION_BACKOFF",
        0.1,
        float,
        "seconds before the first retry; doubles at each retry, at most 5 s",
    ),
    Option(
        "notification_queue_size",
        "--notification-queue-size",
        "NGSI_LD_NOTIFICATION_QUEUE_SIZE",
        10000,
        _positive_int,
        "pending notifications kept per subscription; overflow is counted, never silent",
    ),
    Option(
        "reuse_port",
        "--reuse-port",
        "NGSI_LD_REUSE_PORT",
        False,
        _bool,
        "share the port with other broker processes (SO_REUSEPORT), for several workers",
    ),
    Option(
        "event_loop",
        "--event-loop",
        "NGSI_LD_EVENT_LOOP",
        "uvloop",
        _event_loop,
        "the event loop serving requests: uvloop (libuv; less CPU a request, asyncio's "
        "loop where uvloop is not installed) or asyncio",
    ),
    Option(
        "thread_scheduling",
        "--thread-scheduling",
        "NGSI_LD_THREAD_SCHEDULING",
        "batch",
        _thread_scheduling,
        "how Linux schedules the broker's threads: batch (SCHED_BATCH: a woken thread "
        "does not preempt the running one, fewer switches between the event loop and the "
        "store's threads: less CPU a write) or normal (the policy it was started with)",
    ),
    Option(
        "workers",
        "--workers",
        "NGSI_LD_WORKERS",
        1,
        _positive_int,
        "broker processes serving the port together (SO_REUSEPORT) on the shared store; "
        "more than 1 turns on --cluster",
    ),
    Option(
        "cluster",
        "--cluster",
        "NGSI_LD_CLUSTER",
        False,
        _bool,
        "this process shares its store with other broker processes: follow their changes, "
        "deliver only the subscriptions it holds a lease on (docs/scaling.md)",
    ),
    Option(
        "cluster_lease_ttl",
        "--cluster-lease-ttl",
        "NGSI_LD_CLUSTER_LEASE_TTL",
        10.0,
        _positive_float,
        "seconds a subscription lease lasts unless renewed; a dead process's subscriptions "
        "move to another process after this",
    ),
    Option(
        "cluster_poll_interval",
        "--cluster-poll-interval",
        "NGSI_LD_CLUSTER_POLL_INTERVAL",
        0.01,
        _positive_float,
        "seconds between two looks at the change feed of the other processes",
    ),
    Option(
        "public_url",
        "--public-url",
        "NGSI_LD_PUBLIC_URL",
        "",
        str,
        "base URL clients reach the broker at, for hosted @context URLs "
        "(default http://<host>:<port>)",
    ),
    Option(
        "model_schemas",
        "--model-schemas",
        "NGSI_LD_MODEL_SCHEMAS",
        "",
        str,
        "directory of JSON Schemas per entity type (<Type>/schema.json, Smart Data Models "
        "layout): a write that breaks one answers 400 (empty: no validation)",
    ),
    Option(
        "temporal",
        "--temporal",
        "NGSI_LD_TEMPORAL",
        True,
        _bool,
        "record the history of every entity write and serve the temporal API "
        "(off: nothing recorded, /temporal answers 501)",
    ),
    Option(
        "temporal_retention",
        "--temporal-retention",
        "NGSI_LD_TEMPORAL_RETENTION",
        "",
        _retention,
        "how long history is kept, an ISO 8601 duration such as P90D (empty: forever)",
    ),
    Option(
        "temporal_instance_limit",
        "--temporal-instance-limit",
        "NGSI_LD_TEMPORAL_INSTANCE_LIMIT",
        10,
        _positive_int,
        "most instances of one attribute in one temporal answer (6.3.10; more: 206 "
        "with Content-Range)",
    ),
    Option(
        "explorer",
        "--explorer",
        "NGSI_LD_EXPLORER",
        True,
        _bool,
        "serve the explorer page at /explorer (off: not mounted)",
    ),
    # -- limits and the outbound request policy (docs/security.md) --
    Option(
        "outbound_allow",
        "--outbound-allow",
        "NGSI_LD_OUTBOUND_ALLOW",
        "",
        _networks,
        "networks (CIDR, comma-separated) the broker may call although they are loopback, "
        "link-local, private or reserved: remote @contexts and notification endpoints there "
        "are refused otherwise (e.g. 127.0.0.0/8,10.0.0.0/8)",
    ),
    Option(
        "context_failure_ttl",
        "--context-failure-ttl",
        "NGSI_LD_CONTEXT_FAILURE_TTL",
        10.0,
        float,
        "seconds a remote @context that could not be retrieved is answered as unavailable "
        "without fetching it again (0: no negative caching)",
    ),
    Option(
        "context_max_remote",
        "--context-max-remote",
        "NGSI_LD_CONTEXT_MAX_REMOTE",
        32,
        _positive_int,
        "most distinct remote @context URLs one request may bring in (more answers 400 "
        "before any is fetched)",
    ),
    Option(
        "body_timeout",
        "--body-timeout",
        "NGSI_LD_BODY_TIMEOUT",
        30.0,
        _positive_float,
        "seconds a request body may take to arrive once its headers have (more: 408 and the "
        "connection is closed)",
    ),
    Option(
        "idle_timeout",
        "--idle-timeout",
        "NGSI_LD_IDLE_TIMEOUT",
        60.0,
        _positive_float,
        "seconds a keep-alive connection may stay idle between two requests",
    ),
    Option(
        "max_connections",
        "--max-connections",
        "NGSI_LD_MAX_CONNECTIONS",
        1000,
        _positive_int,
        "open client connections per broker process; a connection beyond it is answered 503 "
        "and closed",
    ),
    # docs/security.md: authentication and authorization
    Option(
        "auth",
        "--auth",
        "NGSI_LD_AUTH",
        "off",
        _auth_mode,
        "authentication: off (every request allowed), oidc (OpenID Connect bearer tokens; "
        "API keys too with --api-keys) or api-keys (API keys only); docs/security.md",
    ),
    Option(
        "auth_issuer",
        "--auth-issuer",
        "NGSI_LD_AUTH_ISSUER",
        "",
        str,
        "the issuer (iss) tokens must name, e.g. https://keycloak.example.org/realms/city; "
        "its JWKS is found through its OpenID configuration unless --auth-jwks-url is given",
    ),
    Option(
        "auth_audience",
        "--auth-audience",
        "NGSI_LD_AUTH_AUDIENCE",
        "",
        str,
        "the audience (aud) tokens must include: the broker's client id at the issuer",
    ),
    Option(
        "auth_jwks_url",
        "--auth-jwks-url",
        "NGSI_LD_AUTH_JWKS_URL",
        "",
        str,
        "URL of the issuer's JSON Web Key Set (fetched at start, again for an unknown key id)",
    ),
    Option(
        "auth_jwks_file",
        "--auth-jwks-file",
        "NGSI_LD_AUTH_JWKS_FILE",
        "",
        str,
        "a JSON Web Key Set file, instead of fetching one (offline sites)",
    ),
    Option(
        "auth_claim",
        "--auth-claim",
        "NGSI_LD_AUTH_CLAIM",
        "ngsi_ld_roles",
        str,
        "the token claim listing the caller's roles as TENANT:ROLE (dots reach into objects: "
        "resource_access.ngsi-ld.roles); roles reader, writer, admin; TENANT * is every "
        "tenant, @default the default one",
    ),
    Option(
        "auth_leeway",
        "--auth-leeway",
        "NGSI_LD_AUTH_LEEWAY",
        30.0,
        float,
        "seconds of clock skew tolerated on a token's exp and nbf",
    ),
    Option(
        "public_tenants",
        "--public-tenant",
        "NGSI_LD_PUBLIC_TENANTS",
        (),
        _names,
        "a tenant anyone may read without credentials (open data; @default is the default "
        "tenant); repeatable",
        many=True,
    ),
    Option(
        "api_keys",
        "--api-keys",
        "NGSI_LD_API_KEYS",
        "",
        str,
        "JSON file of API keys for machine clients: SHA-256 of the key -> its roles "
        "(docs/security.md); sent as X-API-Key or Authorization: Bearer",
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """The broker's configuration; defaults are those of ``OPTIONS``."""

    host: str = "0.0.0.0"
    port: int = 1026
    store: str = "sqlite:ngsi-ld-data/broker.db"
    core_context_version: str = "1.8"
    default_page_size: int = 20
    max_page_size: int = 1000
    max_body_size: int = 8 * 1024 * 1024
    max_batch_size: int = 1000
    context_dir: str = ""
    context_timeout: float = 5.0
    context_max_size: int = 1024 * 1024
    context_cache_size: int = 512
    log_level: str = "INFO"
    log_json: bool = False
    multi_tenancy: bool = True
    cors_origin: str = ""
    notification_timeout: float = 10.0
    forward_timeout: float = 5.0
    notification_retries: int = 2
    notification_backoff: float = 0.1
    notification_queue_size: int = 10000
    reuse_port: bool = False
    event_loop: str = "uvloop"
    thread_scheduling: str = "batch"
    workers: int = 1
    cluster: bool = False
    cluster_lease_ttl: float = 10.0
    cluster_poll_interval: float = 0.01
    public_url: str = ""
    model_schemas: str = ""
    explorer: bool = True
    temporal: bool = True
    temporal_retention: str = ""
    temporal_instance_limit: int = 10
    outbound_allow: str = ""
    context_failure_ttl: float = 10.0
    context_max_remote: int = 32
    body_timeout: float = 30.0
    idle_timeout: float = 60.0
    max_connections: int = 1000
    auth: str = "off"
    auth_issuer: str = ""
    auth_audience: str = ""
    auth_jwks_url: str = ""
    auth_jwks_file: str = ""
    auth_claim: str = "ngsi_ld_roles"
    auth_leeway: float = 30.0
    public_tenants: tuple[str, ...] = ()
    api_keys: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The URL clients use to reach this broker (for hosted context URLs)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ngsi-ld-broker",
        description="NGSI-LD context broker (ETSI GS CIM 009). Every option can also be set "
        "with the environment variable shown; a flag wins over the variable.",
        epilog="Other commands: 'ngsi-ld-broker demo' (the broker with a generated smart "
        "lampposts city and its live readings), 'ngsi-ld-broker load FILE...' (open-data "
        "files into a broker or a store) and 'ngsi-ld-broker api-key NAME TENANT:ROLE...' "
        "(a key for --api-keys); each has its own --help.",
    )
    for opt in OPTIONS:
        parser.add_argument(
            opt.flag,
            dest=opt.name,
            default=None,
            metavar=opt.env,
            action="append" if opt.many else "store",
            help=f"{opt.help} [env {opt.env}, default {opt.default!r}]",
        )
    return parser


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from flags, then environment variables, then defaults.

    Raises SystemExit (via argparse) with a clear message on an invalid value.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw = getattr(args, opt.name)
        source = opt.flag
        if raw is None and opt.env in env:
            raw, source = env[opt.env], opt.env
        if raw is None:
            continue
        try:
            values[opt.name] = opt.convert(raw)
        except ValueError as exc:
            parser.error(f"{source}: {exc}")
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in values.items() if k in known})


def options_table() -> str:
    """The README's options table, in Markdown."""
    rows = ["| flag | environment variable | default | meaning |", "| --- | --- | --- | --- |"]
    for opt in OPTIONS:
        default = "" if opt.many else opt.default
        rows.append(f"| `{opt.flag}` | `{opt.env}` | `{default}` | {opt.help} |")
    return "\n".join(rows)

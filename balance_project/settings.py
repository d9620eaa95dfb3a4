"""Settings for the balance service, read from the environment in this one place.

With no environment variables at all the service runs on the embedded default: a SQLite file under
``var/``, no Redis (local-memory cache), and a filesystem Celery broker. Production points
``DATABASE_URL`` at PostgreSQL and ``REDIS_URL`` at Redis; nothing behaves differently elsewhere.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from balance_project import secrecy

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BALANCE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_amounts_by_currency(name: str) -> dict[str, int]:
    """``CUR=amount,CUR=amount`` (e.g. ``EUR=500000,JPY=1000000000``): minor units per currency,
    each from 1 to 2**63-1; anything else refuses to start, naming the setting."""
    amounts: dict[str, int] = {}
    for item in env_list(name, ""):
        code, _, amount = item.partition("=")
        code, amount = code.strip(), amount.strip()
        if not (len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()):
            amounts = {}
            break
        if not (amount.isascii() and amount.isdigit() and 0 < int(amount) < 2**63):
            amounts = {}
            break
        amounts[code] = int(amount)
    else:
        return amounts
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"{name} is CUR=amount,... with amounts in minor units from 1 to 2**63-1")


DEBUG = env_bool("DJANGO_DEBUG", False)
# A debug page shows settings: connection URLs carry passwords, so they are hidden like keys.
DEFAULT_EXCEPTION_REPORTER_FILTER = "balance_project.debug_filter.SecretSafeExceptionReporterFilter"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", secrecy.EMBEDDED_SECRET_KEY)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# Production hardening: on by default only when DJANGO_SECURE is set, so `check --deploy` passes there.
SECURE = env_bool("DJANGO_SECURE", False)
# The embedded defaults of the keys are public: a configured database or DJANGO_SECURE=1 never runs
# on them, nor on a short key (balance_project/secrecy.py).
_key_refusal = secrecy.production_key_problems(os.environ, production=SECURE or bool(os.environ.get("DATABASE_URL")))
if _key_refusal:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(_key_refusal)
if SECURE:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Probes and metrics are scraped over plain HTTP inside the cluster.
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]

INSTALLED_APPS = [
    # django.contrib.admin, with the site that asks staff for a second factor (admin_site.py).
    "balance_project.admin_apps.BalanceAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "django_prometheus",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "accounts",
    "ledger",
    "reservations",
    "tables",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Every request's database waits end by its budget (balance_project/deadlines.py).
    "balance_project.deadlines.CallBudgetMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: turns a refused admin login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Axes first: it refuses a locked-out user or address before the password is even checked. API keys
# are not a Django login (accounts/auth.py), so the API never passes through these.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# The admin's own listener (balance_project/wsgi_admin.py) serves only the admin; see "Admin".
HTTP_SERVES = os.environ.get("BALANCE_HTTP_SERVES", "api")
if HTTP_SERVES not in ("api", "admin"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("BALANCE_HTTP_SERVES must be api or admin")
ROOT_URLCONF = "balance_project.urls_admin" if HTTP_SERVES == "admin" else "balance_project.urls"
WSGI_APPLICATION = "balance_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The admin's base_site.html (the integrity banner): django.contrib.admin's own app
        # templates come first among the app directories, so an override lives here.
        "DIRS": [BASE_DIR / "balance_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
SQLITE_PATH = VAR_DIR / "balance.sqlite3"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # Long-lived connections: a new one costs a connect and authentication round trips, and the
    # triggers' plans are cached per connection.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600))}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(SQLITE_PATH)}}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so concurrent read-modify-write transactions queue
    # instead of failing with "database is locked" (see DESIGN.md, notes from trials).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    # A file, not shared-cache memory, so threads in concurrency tests share one test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_balance.sqlite3")}
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 3))
    # A transaction left open by a stuck process ends, and its locks go, after this long idle. And a
    # backend whose process died (SIGKILL mid-call) notices within DB_CLIENT_CHECK_MS and gives up,
    # instead of running the batch it was sent, COMMIT included, once a lock it waits on is free
    # (docs/processes.md; PostgreSQL 14 or later, 0 leaves it out).
    _client_check_ms = env_int("DB_CLIENT_CHECK_MS", 1_000)
    DATABASES["default"]["OPTIONS"].setdefault(
        "options",
        f"-c idle_in_transaction_session_timeout={env_int('DB_IDLE_IN_TRANSACTION_TIMEOUT_MS', 10_000)}"
        + (f" -c client_connection_check_interval={_client_check_ms}" if _client_check_ms > 0 else ""),
    )

# The hot calls' statements are prepared once per database session and then EXECUTEd, which spares
# PostgreSQL their parse and plan (ledger/prepared.py). 0 behind a pooler in transaction mode, where
# a session's prepared statements do not follow the caller.
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)

# Least-privilege roles on PostgreSQL (balance_project/db_roles.py, docs/db-roles.md): DATABASE_URL
# is the service's runtime role; migrations run as the owner role of MIGRATION_DATABASE_URL
# (`manage.py db_roles migrate`), never given to the service's processes; DB_ADMIN_URL, a role that
# may create roles, is read by `db_roles create` alone.
MIGRATION_DATABASE_URL = os.environ.get("MIGRATION_DATABASE_URL", "")
DB_ADMIN_URL = os.environ.get("DB_ADMIN_URL", "")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (Redis) --------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CACHE_KEY_PREFIX = os.environ.get("CACHE_KEY_PREFIX", "balance")
REDIS_TIMEOUT_SECONDS = env_int("REDIS_TIMEOUT_MS", 50) / 1000
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # Tens of milliseconds: a Redis that does not answer in that time costs the one
                # call that notices it this much, then the breaker skips it (#10).
                "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT_SECONDS,
                "SOCKET_TIMEOUT": REDIS_TIMEOUT_SECONDS,
                # Redis is a fast path only: when it is down, reads fall back to the database.
                "IGNORE_EXCEPTIONS": True,
                # A Redis that stops answering is skipped at once for a while, and cached balances
                # are dropped when it answers again (balance_project/redis_breaker.py).
                "CONNECTION_POOL_CLASS": "balance_project.redis_breaker.CircuitBreakerConnectionPool",
            },
        }
    }
    # The breaker logs one warning per outage; a traceback per failed command flooded the log.
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": CACHE_KEY_PREFIX}}
# How long the cache is skipped after Redis stopped answering (balance_project/redis_breaker.py).
REDIS_BREAKER_SECONDS = float(os.environ.get("REDIS_BREAKER_SECONDS", "5"))

# --- Auth, i18n, static ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Admin ---------------------------------------------------------------------------------------
# Staff move money by hand here, so the admin gets what a bank's back office has (docs/admin.md).
# A TOTP second factor for every admin page (django-otp). Always on with DJANGO_SECURE=1; on by
# default on the embedded default too (`manage.py otp_enrol <user>` gives a new user a device).
ADMIN_OTP_REQUIRED = env_bool("ADMIN_OTP_REQUIRED", True)
if SECURE and not ADMIN_OTP_REQUIRED:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("ADMIN_OTP_REQUIRED=0 is refused when DJANGO_SECURE=1")
OTP_TOTP_ISSUER = os.environ.get("ADMIN_OTP_ISSUER", "Balance")
# The TOTP secret stays out of the device pages once it is made (enrol with the command instead).
OTP_ADMIN_HIDE_SENSITIVE_DATA = SECURE
# Whether the public API port also serves /admin/. Off in production, where the admin has its own
# listener: ADMIN_BIND (runall's "admin" process, the compose "admin" service).
ADMIN_ON_API_PORT = env_bool("ADMIN_ON_API_PORT", not SECURE)
ADMIN_BIND = os.environ.get("ADMIN_BIND", "")
# Login lockout (django-axes): after this many failed logins for one user name, or from one address,
# logins are refused, the right password too, until the cool-off has passed since the last failure.
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ADMIN_LOGIN_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# Behind proxies that set X-Forwarded-For, how many: the client address is then that many hops back,
# not the proxy's (0: REMOTE_ADDR, for a listener clients reach directly).
ADMIN_TRUSTED_PROXY_COUNT = env_int("ADMIN_TRUSTED_PROXY_COUNT", 0)
if ADMIN_TRUSTED_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = ADMIN_TRUSTED_PROXY_COUNT
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
# Four-eyes adjustments (accounts/adjustments.py): a manual adjustment whose size is above this many
# minor units is a proposal that a second staff member approves. Per currency:
# "JPY:10000,EUR:50000"; other currencies use the default.
ADJUSTMENT_FOUR_EYES_ABOVE = env_int("ADJUSTMENT_FOUR_EYES_ABOVE", 10_000)
ADJUSTMENT_FOUR_EYES_ABOVE_BY_CURRENCY = env_amounts_by_currency("ADJUSTMENT_FOUR_EYES_ABOVE_BY_CURRENCY")
ADJUSTMENT_PROPOSAL_TTL_SECONDS = env_int("ADJUSTMENT_PROPOSAL_TTL_SECONDS", 72 * 60 * 60)

# Every HTTP call's time budget: its database waits end by then, and nothing commits after it.
HTTP_CALL_SECONDS = float(os.environ.get("HTTP_CALL_SECONDS", "10"))
# PostgreSQL unreachable (docs/degradation.md): calls skip it this long after a failed wait; a key
# lookup waits at most API_KEY_DB_SECONDS, then a key verified in the last API_KEY_OUTAGE_SECONDS
# authenticates reads (so a revoked key stops working within that window).
DB_OUTAGE_RETRY_SECONDS = float(os.environ.get("DB_OUTAGE_RETRY_SECONDS", "1"))
API_KEY_DB_SECONDS = float(os.environ.get("API_KEY_DB_SECONDS", "1"))
API_KEY_OUTAGE_SECONDS = float(os.environ.get("API_KEY_OUTAGE_SECONDS", "300"))

# Bodies over 64 KiB are refused before any view runs.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

# --- REST framework and OpenAPI -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.auth.HasScopes"],
    "DEFAULT_THROTTLE_CLASSES": ["balance_project.throttling.MutationRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "balance_project.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Balance service API",
    "DESCRIPTION": "Wallets, deposits and withdrawals, buy-ins, table pots and the ledger. "
    "Amounts are integers in minor units.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Strict bodies and non-empty query parameters, as the server enforces them (balance_project/schema.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "balance_project.schema.postprocess"],
}

# --- Ledger and money rules -----------------------------------------------------------------------
# The HMAC key for the entry checksum chain lives outside the database, so a rewrite of a whole
# chain by someone with database access alone is still detected.
LEDGER_HMAC_KEY = os.environ.get("LEDGER_HMAC_KEY", secrecy.EMBEDDED_LEDGER_HMAC_KEY)
# Where each seal of the journal is appended outside the database (ledger/seal_sink.py): in
# production a file on another volume than PostgreSQL's. A database reset needs this file gone too.
LEDGER_SEAL_SINK = os.environ.get("LEDGER_SEAL_SINK", f"file://{VAR_DIR / 'ledger-seals.jsonl'}")
# Records older than this and still unsealed are a problem for the verifier (the sealer is down).
LEDGER_SEAL_WINDOW_SECONDS = env_int("LEDGER_SEAL_WINDOW_SECONDS", 60)
# The most one call may move or hold, in minor units (balance_project/money.py): MAX_AMOUNT for every
# currency, except those MAX_AMOUNT_BY_CURRENCY names ("JPY=100000000000,KRW=...").
MAX_AMOUNT = env_int("MAX_AMOUNT", 10**15)
MAX_AMOUNT_BY_CURRENCY = env_amounts_by_currency("MAX_AMOUNT_BY_CURRENCY")
if not all(0 < limit < 2**63 for limit in [MAX_AMOUNT, *MAX_AMOUNT_BY_CURRENCY.values()]):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("MAX_AMOUNT and MAX_AMOUNT_BY_CURRENCY must be from 1 to 2**63-1")
IDEMPOTENCY_KEY_MAX_LENGTH = 255
# Mutating HTTP calls per API key per second (balance_project/throttling.py); one more is 429 with
# Retry-After. 0 turns the limit off.
API_RATE_LIMIT_PER_SECOND = env_int("API_RATE_LIMIT_PER_SECOND", 1000)
IDEMPOTENCY_CACHE_TTL_SECONDS = env_int("IDEMPOTENCY_CACHE_TTL_SECONDS", 24 * 60 * 60)
BALANCE_CACHE_TTL_SECONDS = env_int("BALANCE_CACHE_TTL_SECONDS", 60 * 60)
RESERVATION_DEFAULT_TTL_SECONDS = env_int("RESERVATION_DEFAULT_TTL_SECONDS", 120)
RESERVATION_MIN_TTL_SECONDS = env_int("RESERVATION_MIN_TTL_SECONDS", 5)
RESERVATION_MAX_TTL_SECONDS = env_int("RESERVATION_MAX_TTL_SECONDS", 3600)
# Rake accounts per currency: a table's rake goes to shard (table pk % this), so settlements at
# different tables rarely wait on one rake row. Changing it only moves where new rake lands.
RAKE_ACCOUNT_SHARDS = env_int("RAKE_ACCOUNT_SHARDS", 16)
# External-funds accounts per currency, the same way: a wallet's deposits and withdrawals post
# against shard (wallet id % this), so the cashier's calls for different wallets do not queue on one
# row. The external funds are the sum of the shards.
EXTERNAL_ACCOUNT_SHARDS = env_int("EXTERNAL_ACCOUNT_SHARDS", 16)

# --- Player protection ---
# (accounts/protection.py, docs/player-protection.md.) Player-to-player transfers between user
# wallets are off unless the operator turns them on (NJ 13:69O-1.3).
PLAYER_TRANSFERS_ENABLED = env_bool("PLAYER_TRANSFERS_ENABLED", False)
# The largest single deposit per currency, "EUR=500000,USD=500000" (minor units); none by default.
MAX_SINGLE_DEPOSIT = env_amounts_by_currency("MAX_SINGLE_DEPOSIT")
# A higher limit (or a removal) applies only after this cooling-off (UKGC RTS 12: 24 hours).
LIMIT_INCREASE_COOLING_OFF_SECONDS = env_int("LIMIT_INCREASE_COOLING_OFF_SECONDS", 24 * 60 * 60)
# Lengths a player may choose, in days: a time-out is short, a self-exclusion at least six months.
TIME_OUT_DAYS = (env_int("TIME_OUT_MIN_DAYS", 1), env_int("TIME_OUT_MAX_DAYS", 42))
SELF_EXCLUSION_DAYS = (env_int("SELF_EXCLUSION_MIN_DAYS", 183), env_int("SELF_EXCLUSION_MAX_DAYS", 3653))

# --- Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_DIR = VAR_DIR / "celery-broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or (REDIS_URL or "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    for sub in ("in", "out", "processed", "control"):
        (CELERY_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "out"),
        "data_folder_out": str(CELERY_BROKER_DIR / "out"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(CELERY_BROKER_DIR / "control"),
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict = {}  # filled in balance_project/celery.py
# The worker's own Prometheus endpoint (0 turns it off); balance_project/celery.py starts it.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 9052)
WORKER_METRICS_ADDR = os.environ.get("WORKER_METRICS_ADDR", "127.0.0.1")

# --- Metrics -------------------------------------------------------------------------------------
# /metrics on the API port (balance_project/metrics_view.py): with a token, scrapes must send it as a
# bearer token; without one it is served off production only (a 404 with DJANGO_SECURE=1).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
if METRICS_TOKEN and len(METRICS_TOKEN.encode()) < secrecy.MIN_KEY_BYTES:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"METRICS_TOKEN must be at least {secrecy.MIN_KEY_BYTES} bytes")

# --- gRPC sidecar ---------------------------------------------------------------------------------
GRPC_BIND = os.environ.get("GRPC_BIND", "127.0.0.1:50051")
GRPC_MAX_WORKERS = env_int("GRPC_MAX_WORKERS", 16)
# A call's time budget (balance_project/deadlines.py): the caller's deadline, or this when it sent none.
GRPC_DEFAULT_CALL_SECONDS = float(os.environ.get("GRPC_DEFAULT_CALL_SECONDS", "10"))
# How much sooner than the caller's deadline the server gives up (covers the request's way in).
GRPC_DEADLINE_MARGIN_SECONDS = float(os.environ.get("GRPC_DEADLINE_MARGIN_SECONDS", "0.1"))
# Calls a sidecar process holds at once, running or queued for a worker; one more is answered
# RESOURCE_EXHAUSTED at once (a client backs off and retries) instead of waiting behind them all.
GRPC_MAX_CONCURRENT_RPCS = env_int("GRPC_MAX_CONCURRENT_RPCS", 4 * GRPC_MAX_WORKERS)
# The largest request message a sidecar reads (the HTTP body limit); larger is RESOURCE_EXHAUSTED.
GRPC_MAX_RECEIVE_MESSAGE_BYTES = env_int("GRPC_MAX_RECEIVE_MESSAGE_BYTES", 64 * 1024)
# sys.setswitchinterval of the sidecar: how long a running thread keeps the GIL from one waiting.
GRPC_GIL_SWITCH_INTERVAL_SECONDS = env_int("GRPC_GIL_SWITCH_INTERVAL_US", 500) / 1_000_000
GRPC_METRICS_PORT = env_int("GRPC_METRICS_PORT", 9051)
# gc.set_threshold of the sidecar once it is serving (balance_project/grpc/server.py): the young
# generation is collected every GRPC_GC_GEN0_THRESHOLD allocations instead of every 700.
GRPC_GC_THRESHOLDS = (env_int("GRPC_GC_GEN0_THRESHOLD", 50_000), 20, 20)
# Server interceptors, outermost first (balance_project/grpc/interceptors.py).
GRPC_INTERCEPTORS = [
    "balance_project.grpc.interceptors.MetricsInterceptor",
    "balance_project.grpc.interceptors.DatabaseConnectionsInterceptor",
    "balance_project.grpc.interceptors.ErrorsInterceptor",
    "balance_project.grpc.interceptors.CallBudgetInterceptor",
    "balance_project.grpc.interceptors.AuthInterceptor",
    "balance_project.grpc.interceptors.RequestDecodingInterceptor",
    "balance_project.grpc.interceptors.MutationGuardInterceptor",
]

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"trace": {"()": "balance_project.tracing.TraceContextFilter"}},  # trace ids, empty when off
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(trace_context)s%(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["trace"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

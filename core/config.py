"""Configuration read from the environment (and `.env`, loaded by the factory).

Every setting has one place: this class. Other modules read `current_app.config`,
never `os.environ`, so tests can pass overrides to `create_app(config)`.
"""

from __future__ import annotations

import os


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean flag the way people write them: true/false, 1/0, yes/no, on/off."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def env_str(name: str, default: str | None = None) -> str | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip()


def _env_seconds(name: str, default: float) -> float:
    """A positive duration in seconds (fractions allowed), e.g. CALCOM_SYNC_TIMEOUT=15."""
    raw = env_str(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def normalise_database_url(url: str) -> str:
    """Accept the URLs hosting providers hand out and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


# Placeholder keys that must never sign production sessions: the one in
# `.env.example`, and what people type when they only want the app to start.
DEVELOPMENT_SECRET_KEYS = frozenset({
    "dev-only-change-me", "dev", "development", "secret", "changeme", "change-me",
})
MIN_SECRET_KEY_LENGTH = 24
PRODUCTION_SECRETS = ("SECRET_KEY", "RETELL_API_KEY", "CALCOM_WEBHOOK_SECRET")


def production_problems(config) -> list[str]:
    """What keeps a production app from starting safely (empty: nothing)."""
    problems = [f"{name} is not set" for name in PRODUCTION_SECRETS if not config.get(name)]
    key = config.get("SECRET_KEY")
    if key and (key in DEVELOPMENT_SECRET_KEYS or len(key) < MIN_SECRET_KEY_LENGTH):
        problems.append(f"SECRET_KEY is a development key (a placeholder, or shorter than "
                        f"{MIN_SECRET_KEY_LENGTH} characters); make one with "
                        "`python -c 'import secrets; print(secrets.token_hex(32))'`")
    if config.get("TRUSTED_PROXY_COUNT", 0) < 0:
        problems.append("TRUSTED_PROXY_COUNT must not be negative")
    return problems


class Config:
    """Settings for one app instance, read when the instance is created."""

    def __init__(self) -> None:
        self.ENV = env_str("SLOTGUARD_ENV", "development")
        self.SECRET_KEY = env_str("SECRET_KEY")

        database_url = env_str("DATABASE_URL")
        # None means "a SQLite file in the instance folder"; the factory fills it in
        # because only the app knows where its instance folder is.
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(database_url) if database_url else None
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

        # None means "start an embedded Redis-compatible server" (core.redis_store).
        self.REDIS_URL = env_str("REDIS_URL")

        self.CALCOM_API_URL = env_str("CALCOM_API_URL", "https://api.cal.com")
        self.CALCOM_API_KEY = env_str("CALCOM_API_KEY")
        self.CALCOM_WEBHOOK_SECRET = env_str("CALCOM_WEBHOOK_SECRET")
        self.RETELL_API_KEY = env_str("RETELL_API_KEY")

        self.FEATURE_ASYNC_BOOKING = env_bool("FEATURE_ASYNC_BOOKING", True)
        self.FEATURE_SLOT_LOCKING = env_bool("FEATURE_SLOT_LOCKING", True)
        self.SLOT_LOCK_TTL = env_int("SLOT_LOCK_TTL", 120)

        self.DASHBOARD_POLL_SECONDS = env_int("DASHBOARD_POLL_SECONDS", 300)
        self.TZ_DEFAULT = env_str("TZ_DEFAULT", "Europe/Berlin")
        # Where the dashboard loads htmx and Chart.js from: "cdn" (with integrity
        # hashes) or "local" (the vendored copies in static/vendor/).
        self.ASSETS_FROM = env_str("ASSETS_FROM", "cdn")

        self.LOG_LEVEL = env_str("LOG_LEVEL", "INFO")

        # --- calcom ---
        # Seconds. Availability is asked while a caller waits on the phone, so its
        # read timeout is short; sync jobs can wait longer (a create must not be
        # abandoned while Cal.com is still writing it).
        self.CALCOM_CONNECT_TIMEOUT = _env_seconds("CALCOM_CONNECT_TIMEOUT", 3.05)
        self.CALCOM_AVAILABILITY_TIMEOUT = _env_seconds("CALCOM_AVAILABILITY_TIMEOUT", 2.5)
        self.CALCOM_SYNC_TIMEOUT = _env_seconds("CALCOM_SYNC_TIMEOUT", 15.0)
        # How long the Cal.com call log (latency, errors, rate-limit headroom) is kept in Redis.
        self.CALCOM_CALL_LOG_RETENTION = env_int("CALCOM_CALL_LOG_RETENTION", 24 * 3600)
        # The local emulator (`flask calcom emulator`, started by `make run` when no
        # real CALCOM_API_KEY is set): where it sends its signed webhooks (secret:
        # CALCOM_EMULATOR_WEBHOOK_SECRET, else CALCOM_WEBHOOK_SECRET), its faults
        # (JSON or key=value pairs, see calcom/emulator_faults.py), seed and rate limit.
        self.CALCOM_EMULATOR_WEBHOOK_URL = env_str("CALCOM_EMULATOR_WEBHOOK_URL")
        self.CALCOM_EMULATOR_WEBHOOK_SECRET = env_str("CALCOM_EMULATOR_WEBHOOK_SECRET")
        self.CALCOM_EMULATOR_FAULTS = env_str("CALCOM_EMULATOR_FAULTS")
        self.CALCOM_EMULATOR_SEED = env_int("CALCOM_EMULATOR_SEED", 0)
        self.CALCOM_EMULATOR_RATE_LIMIT = env_int("CALCOM_EMULATOR_RATE_LIMIT", 120)

        # --- voice ---
        # Seconds Cal.com's offered slots are reused per event type and day (0: off).
        # Short: local appointments and holds are checked live anyway, and the
        # Cal.com webhook invalidates the cache when Cal.com's calendar changes.
        self.SLOT_CACHE_SECONDS = env_int("SLOT_CACHE_SECONDS", 30)

        # --- dashboard ---
        # Failed logins allowed per (client address, email) before that pair is
        # locked out for LOGIN_LOCKOUT_SECONDS; a client address trying many emails
        # is locked after LOGIN_MAX_ATTEMPTS_PER_IP failures in the same window.
        self.LOGIN_MAX_ATTEMPTS = env_int("LOGIN_MAX_ATTEMPTS", 5)
        self.LOGIN_MAX_ATTEMPTS_PER_IP = env_int("LOGIN_MAX_ATTEMPTS_PER_IP", 50)
        self.LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)
        self.DASHBOARD_PAGE_SIZE = env_int("DASHBOARD_PAGE_SIZE", 25)
        # Where an operator opens a booking in Cal.com; {uid} is the booking uid.
        self.CALCOM_BOOKING_URL = env_str("CALCOM_BOOKING_URL", "https://app.cal.com/booking/{uid}")
        # The dashboard stays open all day and htmx keeps the token of the first page
        # load: let a CSRF token live as long as the session it is bound to.
        self.WTF_CSRF_TIME_LIMIT = None

        # How many reverse proxies (load balancer, nginx) stand in front of the app and
        # set X-Forwarded-For/-Proto/-Host: their values are trusted for that many hops
        # (werkzeug's ProxyFix), so the client address (login throttling, /metrics
        # networks) and https links are right. 0: no proxy, the headers are ignored
        # (anyone could send them).
        self.TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

        # Voice requests are small; anything bigger is refused with 413 before parsing.
        self.MAX_CONTENT_LENGTH = env_int("MAX_CONTENT_LENGTH", 64 * 1024)

        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = self.ENV == "production"
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.ENV == "production"
        # htmx sends the token in this header (see templates/base.html).
        self.WTF_CSRF_HEADERS = ["X-CSRFToken", "X-CSRF-Token"]

        # --- monitoring ---
        # Thresholds of the sync health rules (monitoring.rules; README "Monitoring
        # and alerts"). Ages in minutes/hours, rates in whole percent.
        self.MONITORING_STALE_PENDING_MINUTES = env_int("MONITORING_STALE_PENDING_MINUTES", 60)
        self.MONITORING_ANCIENT_FAILED_HOURS = env_int("MONITORING_ANCIENT_FAILED_HOURS", 24)
        self.MONITORING_STALE_PENDING_WARNING = env_int("MONITORING_STALE_PENDING_WARNING", 10)
        self.MONITORING_MANUAL_REVIEW_CRITICAL = env_int("MONITORING_MANUAL_REVIEW_CRITICAL", 1)
        self.MONITORING_FAILED_ANCIENT_CRITICAL = env_int("MONITORING_FAILED_ANCIENT_CRITICAL", 1)
        self.MONITORING_PENDING_BACKLOG_CRITICAL = env_int("MONITORING_PENDING_BACKLOG_CRITICAL", 100)
        self.MONITORING_FAILURE_RATE_CRITICAL_PERCENT = env_int("MONITORING_FAILURE_RATE_CRITICAL_PERCENT", 50)
        self.MONITORING_FAILURE_RATE_MIN_ATTEMPTS = env_int("MONITORING_FAILURE_RATE_MIN_ATTEMPTS", 10)
        self.MONITORING_CALCOM_ERROR_RATE_WARNING_PERCENT = env_int("MONITORING_CALCOM_ERROR_RATE_WARNING_PERCENT", 20)
        self.MONITORING_CALCOM_MIN_CALLS = env_int("MONITORING_CALCOM_MIN_CALLS", 10)
        self.MONITORING_CALCOM_WINDOW_SECONDS = env_int("MONITORING_CALCOM_WINDOW_SECONDS", 3600)
        self.MONITORING_TREND_WINDOW_MINUTES = env_int("MONITORING_TREND_WINDOW_MINUTES", 60)
        self.MONITORING_TREND_HORIZON_MINUTES = env_int("MONITORING_TREND_HORIZON_MINUTES", 60)
        self.MONITORING_TREND_MIN_SAMPLES = env_int("MONITORING_TREND_MIN_SAMPLES", 4)
        self.MONITORING_ALERT_ID_LIMIT = env_int("MONITORING_ALERT_ID_LIMIT", 50)
        # A little above the 5-minute refresh, so readers never find the cache empty
        # between two scheduled refreshes.
        self.MONITORING_CACHE_TTL_SECONDS = env_int("MONITORING_CACHE_TTL_SECONDS", 360)
        self.MONITORING_ALERT_REMIND_MINUTES = env_int("MONITORING_ALERT_REMIND_MINUTES", 240)
        # Notifiers: each one is on when its variables are set; log is always on.
        self.PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL")
        self.NOTIFY_TIMEOUT_SECONDS = env_int("NOTIFY_TIMEOUT_SECONDS", 10)
        self.SLACK_WEBHOOK_URL = env_str("SLACK_WEBHOOK_URL")
        self.SLACK_MIN_SEVERITY = env_str("SLACK_MIN_SEVERITY", "warning")
        self.SMTP_HOST = env_str("SMTP_HOST")
        self.SMTP_PORT = env_int("SMTP_PORT", 587)
        self.SMTP_USERNAME = env_str("SMTP_USERNAME")
        self.SMTP_PASSWORD = env_str("SMTP_PASSWORD")
        self.SMTP_STARTTLS = env_bool("SMTP_STARTTLS", True)
        self.SMTP_SSL = env_bool("SMTP_SSL", False)
        self.ALERT_EMAIL_FROM = env_str("ALERT_EMAIL_FROM", "slotguard@localhost")
        self.ALERT_EMAIL_TO = env_str("ALERT_EMAIL_TO")
        self.ALERT_EMAIL_MIN_SEVERITY = env_str("ALERT_EMAIL_MIN_SEVERITY", "critical")
        self.PAGERDUTY_ROUTING_KEY = env_str("PAGERDUTY_ROUTING_KEY")
        self.PAGERDUTY_EVENTS_URL = env_str("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com/v2/enqueue")
        self.PAGERDUTY_MIN_SEVERITY = env_str("PAGERDUTY_MIN_SEVERITY", "critical")
        # The rq-scheduler cron schedule (workers.schedule), in the scheduler host's
        # local time (UTC on most servers).
        self.SCHEDULE_METRICS_CRON = env_str("SCHEDULE_METRICS_CRON", "*/5 * * * *")
        self.SCHEDULE_ALERTS_CRON = env_str("SCHEDULE_ALERTS_CRON", "*/15 * * * *")
        self.SCHEDULE_SWEEPER_CRON = env_str("SCHEDULE_SWEEPER_CRON", "*/5 * * * *")
        self.SCHEDULE_DIGEST_CRON = env_str("SCHEDULE_DIGEST_CRON", "0 7 * * *")
        self.SCHEDULER_INTERVAL_SECONDS = env_int("SCHEDULER_INTERVAL_SECONDS", 30)

        # The rooms of the app, wired by the factory by name so that `core` never
        # imports them (dependencies point inward, see DESIGN.md). Each module has
        # an `init_app(app)` that registers its blueprints and CLI commands.
        self.ROOMS = [
            "core.health",
            "core.cli",
            "calcom.cli",
            "booking.calcom_webhook",
            "monitoring.cli",
            "workers.cli",
            "booking.routes",
            "core.observability",
            "core.privacy",
            "workers.ops_cli",
            "dashboard",
        ]

        # --- sync workers ---
        # Attempts per sync request (the first try included) before an appointment
        # goes to manual review. Between attempts the wait is drawn uniformly from
        # [0, min(cap, base * 2**n)] for the n-th retry (full jitter): with the
        # defaults the ceilings are 2, 4, 8 and 16 minutes, so five attempts end
        # within 30 minutes of the first failure (about 15 on average).
        self.SYNC_MAX_ATTEMPTS = env_int("SYNC_MAX_ATTEMPTS", 5)
        self.SYNC_BACKOFF_BASE_SECONDS = env_int("SYNC_BACKOFF_BASE_SECONDS", 120)
        self.SYNC_BACKOFF_CAP_SECONDS = env_int("SYNC_BACKOFF_CAP_SECONDS", 960)
        # How long one worker may hold an appointment's sync lock without renewing it
        # (renewed before every Cal.com call, so it only matters when a worker dies).
        self.SYNC_LOCK_SECONDS = env_int("SYNC_LOCK_SECONDS", 120)
        # A job that finds another worker syncing the same appointment tries again after this.
        self.SYNC_BUSY_RETRY_SECONDS = env_int("SYNC_BUSY_RETRY_SECONDS", 15)
        # The sweeper re-enqueues appointments pending longer than this with no job in flight.
        self.SYNC_SWEEP_AFTER_MINUTES = env_int("SYNC_SWEEP_AFTER_MINUTES", 10)
        self.SYNC_SWEEP_BATCH = env_int("SYNC_SWEEP_BATCH", 200)

        # --- ops ---
        # Log lines: "json" (one object per line, the production default) or "text".
        self.LOG_FORMAT = env_str("LOG_FORMAT", "json" if self.ENV == "production" else "text")
        # GET /metrics: a bearer token (secret) and/or the networks allowed to scrape.
        # Without a token only these networks may scrape (default: this host only);
        # with a token and no networks set, any address presenting the token may.
        self.METRICS_TOKEN = env_str("METRICS_TOKEN")
        self.METRICS_ALLOWED_NETWORKS = env_str("METRICS_ALLOWED_NETWORKS")
        # Drift reconciliation (workers.reconcile): the default window around today,
        # Cal.com's rate limit (requests per minute per API key) and the share of it
        # reconciliation may use, so the voice agent and the sync keep the rest.
        self.RECONCILE_DAYS_BACK = env_int("RECONCILE_DAYS_BACK", 1)
        self.RECONCILE_DAYS_AHEAD = env_int("RECONCILE_DAYS_AHEAD", 60)
        self.CALCOM_RATE_LIMIT_PER_MINUTE = env_int("CALCOM_RATE_LIMIT_PER_MINUTE", 120)
        self.RECONCILE_RATE_SHARE_PERCENT = env_int("RECONCILE_RATE_SHARE_PERCENT", 25)
        # A finished run with more drift than this raises the reconcile_drift alert.
        self.RECONCILE_DRIFT_ALERT_THRESHOLD = env_int("RECONCILE_DRIFT_ALERT_THRESHOLD", 0)
        self.SCHEDULE_RECONCILE_CRON = env_str("SCHEDULE_RECONCILE_CRON", "30 2 * * *")
        # Retention (days; 0 keeps forever) and the prune job that enforces it.
        self.RETENTION_SYNC_ATTEMPTS_DAYS = env_int("RETENTION_SYNC_ATTEMPTS_DAYS", 90)
        self.RETENTION_RECONCILIATION_RUNS_DAYS = env_int("RETENTION_RECONCILIATION_RUNS_DAYS", 180)
        self.RETENTION_FINISHED_JOBS_HOURS = env_int("RETENTION_FINISHED_JOBS_HOURS", 24)
        self.PRUNE_BATCH_SIZE = env_int("PRUNE_BATCH_SIZE", 500)
        self.SCHEDULE_PRUNE_CRON = env_str("SCHEDULE_PRUNE_CRON", "15 3 * * *")

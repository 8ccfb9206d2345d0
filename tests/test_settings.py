from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from asyncpress.core.config import DEV_JWT_SECRET, Settings


class TestSettings:
    def test_refuses_the_built_in_secret_outside_development(self) -> None:
        with pytest.raises(ValidationError, match="built-in development secret"):
            Settings(environment="production", jwt_secret=DEV_JWT_SECRET)

    def test_accepts_the_built_in_secret_in_development(self) -> None:
        assert Settings(environment="development").jwt_secret == DEV_JWT_SECRET

    def test_refuses_a_short_secret(self) -> None:
        with pytest.raises(ValidationError, match="at least 32"):
            Settings(environment="production", jwt_secret="short")

    def test_reads_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ENVIRONMENT", "production")
        monkeypatch.setenv("JWT_SECRET", "s" * 40)
        monkeypatch.setenv("JWT_TTL_S", "60")
        monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
        monkeypatch.setenv("LOG_LEVEL", "debug")
        monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u:p@db/app")
        settings = Settings()
        assert settings.jwt_ttl_s == 60
        assert settings.cors_origins == ("https://a.example", "https://b.example")
        assert settings.log_level == "DEBUG"
        assert not settings.is_sqlite

    def test_production_is_the_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("ENVIRONMENT", raising=False)
        monkeypatch.delenv("JWT_SECRET", raising=False)
        with pytest.raises(ValidationError):
            Settings(_env_file=None)

    def test_reads_a_dot_env_file(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        for name in ("ENVIRONMENT", "JWT_SECRET", "JWT_TTL_S"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.chdir(tmp_path)
        (tmp_path / ".env").write_text(
            "ENVIRONMENT=production\nJWT_SECRET=" + "e" * 40 + "\nJWT_TTL_S=90\n"
        )
        settings = Settings()
        assert (settings.environment, settings.jwt_ttl_s) == ("production", 90)

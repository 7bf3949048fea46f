"""Test-suite plugins: service fixtures live in their own modules and are registered here."""

pytest_plugins = ["tests.integration.conftest_postgres", "tests.integration.conftest_kafka"]

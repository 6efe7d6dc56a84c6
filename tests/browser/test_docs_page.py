"""Swagger UI at /api/docs in headless Chromium: it renders every operation from the app's
own assets under the page's Content-Security-Policy, with no request leaving this machine."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import Browser

pytestmark = pytest.mark.browser

TIMEOUT_S = 20
OPERATIONS = 3  # /api/weather, /api/weather/stats, /api/stations


def test_swagger_ui_renders_every_operation_offline_under_its_csp(browser: Browser, served: str):
    browser.driver.get(f"{served}/api/docs")
    WebDriverWait(browser.driver, TIMEOUT_S).until(
        lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) >= OPERATIONS
    )
    paths = {
        element.text.replace("\u200b", "")  # Swagger UI breaks long paths with <wbr>
        for element in browser.driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }

    assert {"/api/weather", "/api/weather/stats", "/api/stations"} <= paths
    assert browser.off_host_requests() == []
    assert browser.errors() == []
    violations = browser.driver.execute_script("return window.cspViolations;")
    assert violations == []

"""The dashboard in a real browser: signing in and out, every page loading with no console
error and no failed request, charts drawn with their points. Each page's screenshot is written
to tests/browser/screenshots/ (git-ignored) to be looked at."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.chromium import console_errors, failed_requests, screenshot
from tests.browser.conftest import SCREENSHOTS, TOKEN, Site

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def settle(driver: WebDriver, name: str) -> None:
    """Screenshot the page, then fail on anything it logged or failed to load."""
    screenshot(driver, SCREENSHOTS / f"{name}.png")
    assert console_errors(driver) == []
    assert failed_requests(driver) == []


def follow(driver: WebDriver, element: WebElement) -> None:
    """Click `element` (a link or a submit button) and wait for the next page."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    # Asked about a node of the page being replaced, Chromium may answer with a generic error
    # ("Node with given id does not belong to the document") instead of a stale reference: poll
    # again; a page that never changes still fails when the wait times out.
    WebDriverWait(driver, 10, ignored_exceptions=(WebDriverException,)).until(staleness_of(page))


def sign_in(driver: WebDriver, site: Site, path: str = "/") -> None:
    driver.delete_all_cookies()
    driver.get(site.url + path)
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    follow(driver, driver.find_element(By.CSS_SELECTOR, "form.sign-in button[type=submit]"))


def charts(driver: WebDriver) -> list:
    """The drawn charts: each an SVG with a line and at least one point, taking up room."""
    found = driver.find_elements(By.CSS_SELECTOR, "figure.chart svg.chart")
    for svg in found:
        assert svg.find_elements(By.CSS_SELECTOR, "circle.point")
        assert svg.find_element(By.TAG_NAME, "polyline").get_attribute("points")
        assert svg.size["width"] > 200 and svg.size["height"] > 50
    return found


def test_the_dashboard_asks_for_the_token_and_shows_no_id_before(driver, site):
    driver.delete_all_cookies()
    wanted = f"/recommendations?kind=user&q={site.user_id}"
    driver.get(site.url + wanted)
    assert "/dashboard/sign-in" in driver.current_url
    assert site.aai_uid not in driver.page_source
    assert driver.find_elements(By.CSS_SELECTOR, "nav a") == []  # no page before signing in
    settle(driver, "sign-in")

    driver.find_element(By.ID, "token").send_keys(TOKEN)
    follow(driver, driver.find_element(By.CSS_SELECTOR, "form.sign-in button[type=submit]"))
    assert driver.current_url == site.url + wanted  # back where it was going
    assert site.aai_uid in driver.page_source
    settle(driver, "after-sign-in")


def rows(driver: WebDriver, caption: str) -> list[list[str]]:
    """The cells of the body rows of the table captioned `caption`."""
    table = driver.find_element(By.XPATH, f"//table[caption[normalize-space()='{caption}']]")
    return [
        [cell.text for cell in row.find_elements(By.XPATH, "./th|./td")]
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]


def test_the_overview_shows_health_engines_the_update_and_traffic(driver, site):
    sign_in(driver, site)
    sections = [h.get_attribute("id") for h in driver.find_elements(By.TAG_NAME, "h2")]
    assert sections == ["health", "engines", "update", "traffic"]
    assert driver.find_element(By.CSS_SELECTOR, "ul.tree")  # the health tree
    update = driver.find_element(By.XPATH, "//section[h2[@id='update']]").text
    assert "succeeded" in update
    outcomes = {row[0]: row[1] for row in rows(driver, "Training outcomes")}
    chain = {"AE", "Embedding", "NCF", "EASE", "iALS", "Hybrid", "Champion", "RL", "Popularity"}
    assert set(outcomes) == chain
    served = {
        (engine, panel): int(day)
        for engine, panel, _, day in rows(driver, "Recommendations served")
    }
    assert served == dict(site.answers)
    assert rows(driver, "User actions (last hour / last day)") == [
        ["http", "1 / 1", "1 / 1", "1 / 1"]  # stored, duplicate, rejected
    ]
    settle(driver, "overview")


def test_the_training_page_lists_runs_and_charts_quality(driver, site):
    sign_in(driver, site, "/training")
    rows = driver.find_elements(
        By.CSS_SELECTOR, "#runs ~ div table tbody tr, section table tbody tr"
    )
    assert rows
    assert charts(driver)  # NCF's HR@10 and NDCG@10
    settle(driver, "training")

    Select(driver.find_element(By.ID, "pipeline")).select_by_visible_text("NCF")
    follow(driver, driver.find_element(By.CSS_SELECTOR, "form.filter button"))
    assert driver.current_url.endswith("/training?pipeline=NCF")
    pipelines = {row.text for row in driver.find_elements(By.CSS_SELECTOR, "tbody th[scope=row]")}
    assert pipelines == {"NCF"}
    settle(driver, "training-ncf")

    follow(driver, driver.find_element(By.CSS_SELECTOR, "tbody td a"))
    assert "/dashboard/training/" in driver.current_url
    assert charts(driver)  # the loss and validation curves
    settle(driver, "training-run")


def test_the_experiments_page_charts_the_variants_and_its_button_stops_one(driver, site):
    sign_in(driver, site, "/experiments")
    [interval_chart] = driver.find_elements(By.CSS_SELECTOR, "figure.chart svg.intervals")
    assert interval_chart.find_elements(By.CSS_SELECTOR, "line.interval")
    assert interval_chart.find_elements(By.CSS_SELECTOR, "circle.point")
    assert interval_chart.size["width"] > 200
    assert "treatment vs control" in driver.page_source
    settle(driver, "experiments")

    follow(driver, driver.find_element(By.CSS_SELECTOR, "form.stop button"))
    assert driver.current_url.split("#")[0].endswith("/dashboard/experiments")
    assert "STOPPED" in driver.find_element(By.CSS_SELECTOR, "section h2").text
    assert driver.find_elements(By.CSS_SELECTOR, "form.stop") == []
    settle(driver, "experiments-stopped")


def test_a_user_and_a_visit_are_looked_up(driver, site):
    sign_in(driver, site, f"/recommendations?kind=aai_uid&q={site.aai_uid}")
    served = driver.find_elements(By.CSS_SELECTOR, "article.served")
    assert served
    assert f"✔ panel, service {site.clicked}" in served[0].text
    settle(driver, "recommendations-user")

    follow(driver, driver.find_element(By.LINK_TEXT, site.visit_id))
    assert "kind=visit" in driver.current_url
    assert len(driver.find_elements(By.CSS_SELECTOR, "article.served")) == 1
    settle(driver, "recommendations-visit")


def test_signing_out_needs_the_token_again(driver, site):
    sign_in(driver, site)
    follow(driver, driver.find_element(By.CSS_SELECTOR, "form.sign-out button"))
    assert "/dashboard/sign-in" in driver.current_url
    driver.get(site.url + "/training")
    assert "/dashboard/sign-in" in driver.current_url
    settle(driver, "signed-out")

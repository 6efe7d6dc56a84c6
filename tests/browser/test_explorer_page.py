"""The station explorer in headless Chromium against a real server with fixture data.

Each test also checks that the page asked nothing of any host but this one and that the
console stayed free of errors (a Content-Security-Policy violation is one).
"""

from __future__ import annotations

import csv
import io
import urllib.request
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import METADATA, ONE_YEAR, OTHER_NETWORK, WITH_GAPS, Browser

pytestmark = pytest.mark.browser

TIMEOUT_S = 15
PHONE_WIDTH_PX = 375


def js(browser: Browser, expression: str) -> Any:
    return browser.driver.execute_script(f"return {expression};")


def wait_for(browser: Browser, expression: str) -> Any:
    """Wait until the JavaScript expression is truthy; its value."""
    return WebDriverWait(browser.driver, TIMEOUT_S).until(lambda _: js(browser, expression))


def chart(name: str) -> str:
    return f"document.getElementById('{name}-chart')"


def open_page(browser: Browser, base_url: str, fragment: str = "") -> None:
    browser.driver.get(f"{base_url}/{fragment}")
    wait_for(browser, "document.getElementById('station').dataset.count")


def wait_for_station(browser: Browser, station_id: str) -> None:
    wait_for(
        browser,
        f"{chart('yearly')}.dataset.state === 'ready' && "
        f"{chart('yearly')}.dataset.station === '{station_id}'",
    )


def wait_for_year(browser: Browser, year: int) -> None:
    wait_for(
        browser,
        f"{chart('daily')}.dataset.state === 'ready' && {chart('daily')}.dataset.year === '{year}'",
    )


def choose_station(browser: Browser, station_id: str) -> None:
    Select(browser.driver.find_element(By.ID, "station")).select_by_value(station_id)
    wait_for_station(browser, station_id)


def choose_year(browser: Browser, year: int) -> None:
    Select(browser.driver.find_element(By.ID, "year")).select_by_value(str(year))
    wait_for_year(browser, year)


def table_rows(browser: Browser, name: str) -> list[list[str]]:
    return js(
        browser,
        f"[...document.querySelectorAll('#{name}-table tbody tr')]"
        ".map(tr => [...tr.cells].map(cell => cell.textContent))",
    )


def assert_stayed_local_and_quiet(browser: Browser) -> None:
    assert browser.off_host_requests() == []
    assert browser.errors() == []
    assert js(browser, "window.cspViolations") == []


def test_the_station_list_fills_from_the_api_and_can_be_searched(browser, served):
    open_page(browser, served)

    ids = js(browser, "[...document.getElementById('station').options].map(o => o.value)")
    assert ids == [WITH_GAPS, ONE_YEAR, OTHER_NETWORK]
    assert browser.driver.find_element(By.ID, "station-count").text == "3 stations."

    browser.driver.find_element(By.ID, "station-search").send_keys("usw")

    ids = js(browser, "[...document.getElementById('station').options].map(o => o.value)")
    assert ids == [OTHER_NETWORK]
    assert browser.driver.find_element(By.ID, "station-count").text == "1 of 3 stations match."
    assert_stayed_local_and_quiet(browser)


def test_choosing_a_station_draws_a_point_per_year_in_both_charts_and_the_table(browser, served):
    open_page(browser, served)

    choose_station(browser, WITH_GAPS)

    # 2000 to 2004: four years with data and 2003 without, which still takes its place.
    assert js(browser, f"{chart('yearly')}.dataset.points") == "5"
    data = js(browser, "window.wxhubExplorer.yearly.data")
    assert data[0] == [2000, 2001, 2002, 2003, 2004]
    assert [len(values) for values in data] == [5, 5, 5, 5]
    labels = js(browser, "window.wxhubExplorer.yearly.series.map(s => s.label)")
    assert labels[1:] == ["Precipitation cm (total)", "Max °C (avg)", "Min °C (avg)"]
    assert [row[0] for row in table_rows(browser, "yearly")] == [str(y) for y in data[0]]
    years = js(browser, "[...document.getElementById('year').options].map(o => o.value)")
    assert years == ["", "2000", "2001", "2002", "2004"]
    assert js(browser, "document.querySelectorAll('#yearly-chart canvas').length") == 1
    assert_stayed_local_and_quiet(browser)


def test_a_missing_yearly_value_is_a_gap_never_a_zero(browser, served):
    open_page(browser, served)

    choose_station(browser, WITH_GAPS)

    years, precipitation, max_temp, min_temp = js(browser, "window.wxhubExplorer.yearly.data")
    in_2002, in_2003 = years.index(2002), years.index(2003)
    # 2002 has days but not one maximum temperature; 2003 has no days at all.
    assert max_temp[in_2002] is None
    assert min_temp[in_2002] == -3.0
    assert [precipitation[in_2003], max_temp[in_2003], min_temp[in_2003]] == [None, None, None]
    rows = {row[0]: row[1:] for row in table_rows(browser, "yearly")}
    assert rows["2002"][0] == "no data"
    assert rows["2003"] == ["no data", "no data", "no data"]
    assert_stayed_local_and_quiet(browser)


def test_choosing_a_year_draws_every_day_of_it_with_gaps_for_missing_days(browser, served):
    open_page(browser, served)
    choose_station(browser, WITH_GAPS)

    choose_year(browser, 2001)

    # 1 January to 9 February: 40 days, of which 20 January has no line in the file.
    assert js(browser, f"{chart('daily')}.dataset.points") == "40"
    assert js(browser, f"{chart('daily')}.dataset.observations") == "39"
    _days, precipitation, max_temp, min_temp = js(browser, "window.wxhubExplorer.daily.data")
    assert len(max_temp) == 40
    assert precipitation[4] is None  # 5 January: no precipitation value
    assert max_temp[4] == 5.4
    assert [precipitation[19], max_temp[19], min_temp[19]] == [None, None, None]
    rows = table_rows(browser, "daily")
    assert len(rows) == 40
    assert rows[19] == ["2001-01-20", "no data", "no data", "no data"]
    assert "#station=USC00000001&year=2001" in browser.driver.current_url
    assert_stayed_local_and_quiet(browser)


def test_the_csv_links_export_what_the_charts_show(browser, served):
    open_page(browser, served)
    choose_station(browser, WITH_GAPS)
    choose_year(browser, 2001)

    stats_link = browser.driver.find_element(By.ID, "stats-csv").get_attribute("href")
    daily_link = browser.driver.find_element(By.ID, "daily-csv").get_attribute("href")

    assert stats_link == f"{served}/api/weather/stats?station_id={WITH_GAPS}&format=csv"
    assert daily_link == (
        f"{served}/api/weather?station_id={WITH_GAPS}"
        "&start_date=2001-01-01&end_date=2001-12-31&format=csv"
    )
    with urllib.request.urlopen(daily_link) as response:  # noqa: S310  (our own test server)
        rows = list(csv.DictReader(io.StringIO(response.read().decode())))
    assert len(rows) == js(browser, f"Number({chart('daily')}.dataset.observations)")
    assert_stayed_local_and_quiet(browser)


def test_clicking_a_year_on_the_chart_draws_its_days(browser, served):
    open_page(browser, served)
    choose_station(browser, WITH_GAPS)
    over = browser.driver.find_element(By.CSS_SELECTOR, "#yearly-chart .u-over")
    x = js(browser, "window.wxhubExplorer.yearly.valToPos(2004, 'x')")

    ActionChains(browser.driver).move_to_element_with_offset(
        over, round(x - over.size["width"] / 2), 0
    ).click().perform()

    wait_for_year(browser, 2004)
    assert js(browser, f"{chart('daily')}.dataset.points") == "3"
    assert Select(browser.driver.find_element(By.ID, "year")).first_selected_option.text == "2004"
    assert_stayed_local_and_quiet(browser)


def test_a_station_and_a_year_can_be_chosen_with_the_keyboard_alone(browser, served):
    open_page(browser, served)

    # Type in the search box, Enter takes the first match and moves into the list.
    browser.driver.find_element(By.ID, "station-search").send_keys("00002", Keys.ENTER)
    wait_for_station(browser, ONE_YEAR)
    assert js(browser, "document.activeElement.id") == "station"
    # The next stop is the year; the arrow keys choose one.
    browser.driver.switch_to.active_element.send_keys(Keys.TAB)
    assert js(browser, "document.activeElement.id") == "year"
    browser.driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)

    wait_for_year(browser, 1999)
    assert js(browser, f"{chart('daily')}.dataset.points") == "3"
    assert_stayed_local_and_quiet(browser)


def test_the_page_fits_a_375_px_phone_without_sideways_scrolling(browser, served):
    browser.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE_WIDTH_PX, "height": 812, "deviceScaleFactor": 2, "mobile": True},
    )
    open_page(browser, served, f"#station={WITH_GAPS}&year=2001")
    wait_for_year(browser, 2001)

    assert js(browser, "document.documentElement.scrollWidth") <= PHONE_WIDTH_PX
    for name in ("yearly", "daily"):
        width = js(browser, f"{chart(name)}.querySelector('.uplot').getBoundingClientRect().right")
        assert width <= PHONE_WIDTH_PX
    assert_stayed_local_and_quiet(browser)


def test_an_api_503_shows_a_visible_message(browser, served_without_database):
    browser.driver.get(f"{served_without_database}/")

    wait_for(browser, "!document.getElementById('error').hidden")
    error = browser.driver.find_element(By.ID, "error")
    assert error.is_displayed()
    assert error.get_attribute("role") == "alert"
    assert "HTTP 503" in error.text
    assert "The database does not answer" in error.text
    assert browser.off_host_requests() == []
    # The 503 itself is the only console error.
    assert all("503" in message for message in browser.errors())


def test_no_request_leaves_the_machine_on_a_full_tour(browser, served):
    open_page(browser, served)
    choose_station(browser, WITH_GAPS)
    choose_year(browser, 2001)

    browser.drain_logs()
    paths = {url.removeprefix(served).split("?")[0] for url in browser.requests}
    assert {"/", "/api/stations", "/api/weather/stats", "/api/weather"} <= paths
    assert any(path.startswith("/explorer/vendor/uPlot") for path in paths)
    assert_stayed_local_and_quiet(browser)


def test_the_request_log_would_catch_a_request_to_another_host(browser):
    # The check above is only worth something if it sees what it is looking for.
    # (A page of our own would not even send it: its CSP blocks other hosts.)
    browser.driver.get("data:text/html,<img src='https://example.org/x.png' alt=''>")

    WebDriverWait(browser.driver, TIMEOUT_S).until(lambda _: browser.off_host_requests())
    assert browser.off_host_requests() == ["https://example.org/x.png"]


def test_the_csp_recorder_would_catch_an_inline_style(browser, served):
    open_page(browser, served)

    browser.driver.execute_script(
        "const style = document.createElement('style');"
        "style.textContent = 'body { color: red; }';"
        "document.head.append(style);"
    )

    wait_for(browser, "window.cspViolations.length")
    assert js(browser, "window.cspViolations") == ["style-src-elem inline"]


# ---- names and the map --------------------------------------------------------------------


def option_texts(browser: Browser) -> dict[str, str]:
    return js(
        browser,
        "Object.fromEntries([...document.getElementById('station').options]"
        ".map(o => [o.value, o.text]))",
    )


def dots(browser: Browser) -> dict[str, tuple[float, float]]:
    """The map's dots by station, in CSS pixels of the canvas."""
    return {dot["id"]: (dot["x"], dot["y"]) for dot in js(browser, "window.wxhubExplorer.map.dots")}


def pixel(browser: Browser, x: float, y: float) -> str:
    """The colour the canvas shows at (x, y) CSS pixels, as #rrggbb."""
    return js(
        browser,
        "(() => { const canvas = document.getElementById('map-canvas');"
        " const ratio = canvas.width / canvas.getBoundingClientRect().width;"
        f" const [r, g, b] = canvas.getContext('2d').getImageData(Math.round({x} * ratio),"
        f" Math.round({y} * ratio), 1, 1).data;"
        " return '#' + [r, g, b].map(v => v.toString(16).padStart(2, '0')).join(''); })()",
    )


def colour(browser: Browser, name: str) -> str:
    return js(
        browser,
        f"getComputedStyle(document.documentElement).getPropertyValue('--{name}').trim()",
    )


def click_map_at(browser: Browser, x: float, y: float) -> None:
    canvas = browser.driver.find_element(By.ID, "map-canvas")
    ActionChains(browser.driver).move_to_element_with_offset(
        canvas, round(x - canvas.size["width"] / 2), round(y - canvas.size["height"] / 2)
    ).click().perform()


def test_stations_are_listed_with_their_names_or_their_id_alone(browser, served):
    open_page(browser, served)

    texts = option_texts(browser)

    span = "\N{EN DASH}"  # between the first and last year
    assert texts[WITH_GAPS].startswith(f"{WITH_GAPS} GAPPY CREEK (2000{span}2004, ")
    assert texts[ONE_YEAR].startswith(f"{ONE_YEAR} SINGLE YEAR FARM (1999{span}1999, ")
    assert texts[OTHER_NETWORK].startswith(f"{OTHER_NETWORK} (2010{span}2010, ")
    browser.driver.find_element(By.ID, "station-search").send_keys("year farm")
    ids = js(browser, "[...document.getElementById('station').options].map(o => o.value)")
    assert ids == [ONE_YEAR]
    assert_stayed_local_and_quiet(browser)


def test_the_map_draws_one_dot_per_station_with_coordinates_and_counts_the_others(browser, served):
    open_page(browser, served)

    placed = dots(browser)

    assert set(placed) == set(METADATA)
    assert js(browser, "document.getElementById('map').dataset.dots") == "2"
    for x, y in placed.values():
        assert pixel(browser, x, y) == colour(browser, "map-dot")
    # West is left and north is up: one scale, the box fitted with a margin.
    (west_x, north_y), (east_x, south_y) = placed[WITH_GAPS], placed[ONE_YEAR]
    width = js(browser, "document.getElementById('map-canvas').getBoundingClientRect().width")
    assert 0 < west_x < east_x < width
    assert north_y < south_y
    assert (east_x - west_x) / (south_y - north_y) == pytest.approx(5, rel=0.01)
    note = browser.driver.find_element(By.ID, "map-note").text
    assert note.startswith("2 stations on the map; 1 station without coordinates is not shown.")
    assert_stayed_local_and_quiet(browser)


def test_clicking_a_dot_loads_that_stations_charts_and_highlights_it(browser, served):
    open_page(browser, served)
    x, y = dots(browser)[ONE_YEAR]

    click_map_at(browser, x, y)

    wait_for_station(browser, ONE_YEAR)
    assert js(browser, "document.getElementById('station').value") == ONE_YEAR
    assert js(browser, "document.getElementById('map').dataset.selected") == ONE_YEAR
    assert pixel(browser, x, y) == colour(browser, "map-chosen")
    other_x, other_y = dots(browser)[WITH_GAPS]
    assert pixel(browser, other_x, other_y) == colour(browser, "map-dot")
    assert f"#station={ONE_YEAR}" in browser.driver.current_url
    assert_stayed_local_and_quiet(browser)


def test_choosing_in_the_list_highlights_the_stations_dot(browser, served):
    open_page(browser, served)

    choose_station(browser, WITH_GAPS)

    x, y = dots(browser)[WITH_GAPS]
    assert js(browser, "document.getElementById('map').dataset.selected") == WITH_GAPS
    assert pixel(browser, x, y) == colour(browser, "map-chosen")
    assert_stayed_local_and_quiet(browser)


def test_a_dot_picks_its_station_even_when_the_search_hides_it(browser, served):
    open_page(browser, served)
    browser.driver.find_element(By.ID, "station-search").send_keys("usw")
    x, y = dots(browser)[WITH_GAPS]

    click_map_at(browser, x, y)

    wait_for_station(browser, WITH_GAPS)
    assert browser.driver.find_element(By.ID, "station-search").get_attribute("value") == ""
    assert js(browser, "document.getElementById('station').value") == WITH_GAPS
    assert_stayed_local_and_quiet(browser)


def test_a_click_between_the_dots_picks_nothing(browser, served):
    open_page(browser, served)
    (west_x, north_y), (east_x, south_y) = dots(browser)[WITH_GAPS], dots(browser)[ONE_YEAR]

    click_map_at(browser, (west_x + east_x) / 2, (north_y + south_y) / 2)

    assert js(browser, "document.getElementById('station').value") == ""
    assert js(browser, f"{chart('yearly')}.dataset.state") is None
    assert_stayed_local_and_quiet(browser)


def test_the_map_is_not_a_keyboard_stop_the_list_is(browser, served):
    open_page(browser, served)

    tabbable = js(
        browser,
        "document.getElementById('map-canvas').tabIndex",
    )

    assert tabbable == -1
    assert "the list above does the same with the keyboard" in (
        browser.driver.find_element(By.ID, "map-note").text
    )


def test_without_any_coordinates_there_is_no_map_and_a_line_says_why(
    browser, served_without_metadata
):
    open_page(browser, served_without_metadata)

    assert not browser.driver.find_element(By.ID, "map-canvas").is_displayed()
    assert browser.driver.find_element(By.ID, "map-note").text == (
        "No map: none of the 3 stations has coordinates yet (the station metadata is not loaded)."
    )
    texts = option_texts(browser)
    assert texts[WITH_GAPS].startswith(f"{WITH_GAPS} (2000")
    choose_station(browser, ONE_YEAR)
    assert_stayed_local_and_quiet(browser)

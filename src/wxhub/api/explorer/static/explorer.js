/* wxhub station explorer: draws the API's own answers with uPlot (vendored, no CDN).
 *
 * Every number comes from the public API (/api/stations, /api/weather/stats, /api/weather),
 * page after page through the `next` links, so the page shows exactly what a client gets.
 * A missing value stays null all the way to the chart, where uPlot draws it as a gap:
 * converting it to a number would draw a false zero. The state (station, year) lives in the
 * URL fragment, so a view can be bookmarked and shared. The stations' positions are drawn on
 * a canvas map in the page itself (no tiles, nothing fetched): a click on a dot chooses its
 * station as the list does, and the list stays the way to choose with the keyboard.
 */
"use strict";

(() => {
  const PAGE_SIZE = 1000; // the API's maximum: fewest round trips
  const CHOOSE_DELAY_MS = 150; // arrowing through the station list loads only where it stops
  // The map: a plain equirectangular projection (one scale for longitude and latitude)
  // fitted to the stations' bounding box, with a margin around it.
  const MAP_MIN_HEIGHT_PX = 160;
  const MAP_MAX_HEIGHT_PX = 360;
  const MAP_MARGIN = 0.06; // of each span, on each side
  const MAP_MIN_SPAN_DEG = 1; // one station alone still gets a degree around it
  const DOT_RADIUS_PX = 4;
  const CHOSEN_RADIUS_PX = 7;
  const HIT_RADIUS_PX = 9; // a click this close to a dot picks it
  const GRATICULE_STEPS_DEG = [0.5, 1, 2, 5, 10, 15, 30, 45];

  const $ = (id) => document.getElementById(id);
  const ui = {
    search: $("station-search"),
    count: $("station-count"),
    station: $("station"),
    status: $("status"),
    error: $("error"),
    yearly: $("yearly"),
    yearlyChart: $("yearly-chart"),
    yearlyTable: $("yearly-table"),
    year: $("year"),
    daily: $("daily"),
    dailyChart: $("daily-chart"),
    dailyTable: $("daily-table"),
    statsCsv: $("stats-csv"),
    dailyCsv: $("daily-csv"),
    map: $("map"),
    mapCanvas: $("map-canvas"),
    mapNote: $("map-note"),
  };

  // The drawn charts, for the browser tests and the console (read-only use, please).
  const charts = { yearly: null, daily: null };
  window.wxhubExplorer = charts;
  // The map's dots in CSS pixels of the canvas ({ id, x, y }), and the picture of the dots
  // without the chosen one, so choosing redraws one dot, not thousands.
  const map = { dots: [], width: 0, height: 0, base: null };
  charts.map = map;

  let stations = [];
  let stationsById = new Map();
  let stationLoad = null; // AbortController of the station being loaded
  let yearLoad = null; // AbortController of the year being loaded
  let chooseTimer = null;
  let current = { station: null, years: [], year: null };

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  // ---- the API ---------------------------------------------------------------------------

  async function problemOf(response) {
    let detail = response.statusText || "no detail";
    try {
      const body = await response.json();
      detail = body.detail || body.title || detail;
    } catch (_) {
      // Not a problem document (a proxy's page, say): the status line is all there is.
    }
    return new ApiError(response.status, detail);
  }

  /** Every item of a paged list, following `next` links from `path`. */
  async function fetchAll(path, signal) {
    const items = [];
    let url = new URL(path, window.location.href);
    for (;;) {
      const response = await fetch(url, { signal, headers: { Accept: "application/json" } });
      if (!response.ok) {
        throw await problemOf(response);
      }
      const body = await response.json();
      items.push(...body.data);
      if (!body.pagination || !body.pagination.next) {
        return items;
      }
      url = new URL(body.pagination.next, url);
    }
  }

  function query(params) {
    return new URLSearchParams(params).toString();
  }

  // ---- messages --------------------------------------------------------------------------

  function say(text) {
    ui.status.textContent = text;
  }

  function showError(error) {
    if (error.name === "AbortError") {
      return; // superseded by a newer choice: not an error
    }
    let text;
    if (error instanceof ApiError && error.status === 503) {
      text = `The data is not available right now (HTTP 503): ${error.message}`;
    } else if (error instanceof ApiError) {
      text = `The API answered HTTP ${error.status}: ${error.message}`;
    } else {
      text = `The server did not answer (${error.message}). Is wxhub running?`;
    }
    ui.error.textContent = text;
    ui.error.hidden = false;
    say("");
  }

  function clearError() {
    ui.error.hidden = true;
    ui.error.textContent = "";
  }

  // ---- formatting ------------------------------------------------------------------------

  function number(value, digits) {
    return value === null || value === undefined ? null : value.toFixed(digits);
  }

  function legendValue(digits) {
    return (_u, value) => (value === null || value === undefined ? "—" : value.toFixed(digits));
  }

  function isoDay(date) {
    const month = String(date.getMonth() + 1).padStart(2, "0");
    const day = String(date.getDate()).padStart(2, "0");
    return `${date.getFullYear()}-${month}-${day}`;
  }

  /** Local midnight of an ISO day, in seconds (uPlot's time unit, shown in local time). */
  function epochOf(isoDate) {
    const [year, month, day] = isoDate.split("-").map(Number);
    return new Date(year, month - 1, day).getTime() / 1000;
  }

  function palette() {
    const style = getComputedStyle(document.documentElement);
    const get = (name) => style.getPropertyValue(name).trim();
    return {
      text: get("--text"),
      grid: get("--grid"),
      max: get("--max-temp"),
      min: get("--min-temp"),
      precip: get("--precip"),
      precipFill: get("--precip-fill"),
      chosen: get("--chosen-year"),
      muted: get("--muted"),
      dot: get("--map-dot"),
      chosenDot: get("--map-chosen"),
    };
  }

  // ---- tables (the charts' numbers, for screen readers and for copying) -----------------

  function fillTable(table, caption, rows) {
    table.querySelector("caption").textContent = caption;
    const body = document.createElement("tbody");
    for (const cells of rows) {
      const tr = document.createElement("tr");
      cells.forEach((cell, i) => {
        const td = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) {
          td.scope = "row";
        }
        if (cell === null) {
          td.textContent = "no data";
          td.className = "missing";
        } else {
          td.textContent = cell;
        }
        tr.append(td);
      });
      body.append(tr);
    }
    table.querySelector("tbody").replaceWith(body);
  }

  // ---- charts ----------------------------------------------------------------------------

  function chartSize(figure) {
    const width = Math.max(280, figure.clientWidth);
    return { width, height: width < 500 ? 240 : 320 };
  }

  function axes(colors, xAxis, leftLabel, rightLabel) {
    const common = { stroke: colors.text, grid: { stroke: colors.grid, width: 1 } };
    return [
      { ...common, ...xAxis },
      { ...common, scale: "temp", label: leftLabel },
      { ...common, scale: "precip", label: rightLabel, side: 1, grid: { show: false } },
    ];
  }

  function series(colors, temperatureUnit, precipitationLabel, digits, showPoints) {
    const points = showPoints ? { show: true, size: 6 } : {};
    return [
      {
        label: precipitationLabel,
        scale: "precip",
        stroke: colors.precip,
        fill: colors.precipFill,
        width: 1,
        paths: uPlot.paths.bars({ size: [0.6, 40] }),
        points: { show: false },
        value: legendValue(digits),
      },
      {
        label: `Max ${temperatureUnit}`,
        scale: "temp",
        stroke: colors.max,
        width: 2,
        points: { ...points, fill: colors.max },
        value: legendValue(1),
      },
      {
        label: `Min ${temperatureUnit}`,
        scale: "temp",
        stroke: colors.min,
        width: 2,
        dash: [6, 4], // not told apart by colour alone
        points: { ...points, fill: colors.min },
        value: legendValue(1),
      },
    ];
  }

  function draw(name, figure, options, data) {
    if (charts[name]) {
      charts[name].destroy();
    }
    charts[name] = new uPlot({ ...options, ...chartSize(figure) }, data, figure);
    figure.dataset.points = String(data[0].length);
    return charts[name];
  }

  /** A band behind the chosen year, drawn on the canvas (no styles: the CSP stays strict). */
  function markChosenYear(chart) {
    if (!current.year) {
      return;
    }
    const left = chart.valToPos(current.year - 0.5, "x", true);
    const right = chart.valToPos(current.year + 0.5, "x", true);
    const { top, height } = chart.bbox;
    chart.ctx.save();
    chart.ctx.fillStyle = palette().chosen;
    chart.ctx.fillRect(left, top, right - left, height);
    chart.ctx.restore();
  }

  function drawYearly(stationId, rows) {
    const byYear = new Map(rows.map((row) => [row.year, row]));
    const first = rows[0].year;
    const last = rows[rows.length - 1].year;
    // Every year in the range, so a year without data is a gap rather than a shortcut.
    const years = [];
    for (let year = first; year <= last; year += 1) {
      years.push(year);
    }
    const pick = (field) =>
      years.map((year) => (byYear.has(year) ? byYear.get(year)[field] : null));
    const data = [
      years,
      pick("total_precipitation_cm"),
      pick("avg_max_temp_c"),
      pick("avg_min_temp_c"),
    ];
    const colors = palette();
    const chart = draw(
      "yearly",
      ui.yearlyChart,
      {
        title: `${stationTitle(stationId)}: yearly statistics`,
        scales: {
          x: { time: false, range: (_u, min, max) => [min - 0.5, max + 0.5] },
          precip: { range: (_u, _min, max) => [0, Math.max(1, max ?? 1) * 1.05] },
        },
        axes: axes(
          colors,
          {
            incrs: [1, 2, 5, 10, 20, 50],
            values: (_u, ticks) => ticks.map((tick) => String(tick)),
          },
          "°C (average)",
          "precipitation, cm",
        ),
        hooks: { drawClear: [markChosenYear] },
        series: [
          { label: "Year", value: (_u, year) => (year === null ? "—" : String(year)) },
          ...series(colors, "°C (avg)", "Precipitation cm (total)", 1, true),
        ],
      },
      data,
    );
    // A click on the chart opens the year under the cursor.
    chart.over.addEventListener("click", () => {
      const index = chart.cursor.idx;
      if (index !== null && index !== undefined) {
        chooseYear(years[index], true);
      }
    });
    fillTable(
      ui.yearlyTable,
      `${stationId}, ${first} to ${last}`,
      years.map((year, i) => [String(year), number(data[2][i], 1), number(data[3][i], 1),
        number(data[1][i], 2)]),
    );
    ui.yearlyChart.dataset.station = stationId;
    return years.filter((year) => byYear.has(year));
  }

  function drawDaily(stationId, year, rows) {
    const byDay = new Map(rows.map((row) => [row.date, row]));
    // Every calendar day from the first to the last observation: a missing day is a gap.
    const days = [];
    if (rows.length) {
      const end = epochOf(rows[rows.length - 1].date);
      const [y, m, d] = rows[0].date.split("-").map(Number);
      for (let day = new Date(y, m - 1, d); day.getTime() / 1000 <= end; day.setDate(day.getDate() + 1)) {
        days.push(isoDay(day));
      }
    }
    const pick = (field) => days.map((day) => (byDay.has(day) ? byDay.get(day)[field] : null));
    const data = [
      days.map(epochOf),
      pick("precipitation_mm"),
      pick("max_temp_c"),
      pick("min_temp_c"),
    ];
    const colors = palette();
    draw(
      "daily",
      ui.dailyChart,
      {
        title: `${stationTitle(stationId)}: ${year}, daily`,
        scales: {
          x: { time: true },
          precip: { range: (_u, _min, max) => [0, Math.max(1, max ?? 1) * 1.05] },
        },
        axes: axes(colors, {}, "°C", "precipitation, mm"),
        series: [
          { label: "Date", value: (_u, ts) => (ts === null ? "—" : isoDay(new Date(ts * 1000))) },
          ...series(colors, "°C", "Precipitation mm", 1, false),
        ],
      },
      data,
    );
    fillTable(
      ui.dailyTable,
      `${stationId}, ${year}: ${rows.length} days with data`,
      days.map((day, i) => [day, number(data[2][i], 1), number(data[3][i], 1),
        number(data[1][i], 1)]),
    );
    ui.dailyChart.dataset.station = stationId;
    ui.dailyChart.dataset.year = String(year);
    ui.dailyChart.dataset.observations = String(rows.length);
  }

  // ---- choosing --------------------------------------------------------------------------

  function remember() {
    const params = {};
    if (current.station) {
      params.station = current.station;
    }
    if (current.year) {
      params.year = String(current.year);
    }
    const hash = query(params);
    history.replaceState(null, "", hash ? `#${hash}` : window.location.pathname);
  }

  async function chooseStation(stationId, year) {
    if (stationLoad) {
      stationLoad.abort();
    }
    if (yearLoad) {
      yearLoad.abort();
    }
    stationLoad = new AbortController();
    const { signal } = stationLoad;
    current = { station: stationId, years: [], year: null };
    remember();
    markChosenStation();
    clearError();
    say(`Loading the yearly statistics of ${stationId}…`);
    ui.yearlyChart.dataset.state = "loading";
    ui.daily.hidden = true;
    ui.dailyCsv.hidden = true;
    try {
      const rows = await fetchAll(
        `/api/weather/stats?${query({ station_id: stationId, page_size: PAGE_SIZE })}`,
        signal,
      );
      if (!rows.length) {
        ui.yearly.hidden = true;
        say(`${stationId} has no yearly statistics yet.`);
        return;
      }
      ui.yearly.hidden = false; // before drawing: the chart takes the section's width
      current.years = drawYearly(stationId, rows);
      fillYears(current.years);
      ui.statsCsv.href = `/api/weather/stats?${query({ station_id: stationId, format: "csv" })}`;
      ui.yearlyChart.dataset.state = "ready";
      say(`${stationId}: ${current.years.length} years with data, ` +
        `${current.years[0]} to ${current.years[current.years.length - 1]}. Choose a year.`);
      if (year && current.years.includes(year)) {
        chooseYear(year, false);
      }
    } catch (error) {
      if (signal.aborted) {
        return; // a newer choice took over
      }
      current.station = null; // choosing it again retries
      markChosenStation();
      ui.yearlyChart.dataset.state = "error";
      showError(error);
    }
  }

  function fillYears(years) {
    const prompt = new Option("Choose a year", "");
    ui.year.replaceChildren(prompt, ...years.map((year) => new Option(String(year), String(year))));
  }

  async function chooseYear(year, fromChart) {
    if (!current.station) {
      return;
    }
    if (!current.years.includes(year)) {
      say(`${current.station} has no data for ${year}.`);
      return;
    }
    if (yearLoad) {
      yearLoad.abort();
    }
    yearLoad = new AbortController();
    const { signal } = yearLoad;
    const stationId = current.station;
    current.year = year;
    ui.year.value = String(year);
    charts.yearly.redraw(false, false);
    remember();
    clearError();
    say(`Loading the days of ${year}…`);
    ui.dailyChart.dataset.state = "loading";
    const filters = { station_id: stationId, start_date: `${year}-01-01`, end_date: `${year}-12-31` };
    try {
      const rows = await fetchAll(`/api/weather?${query({ ...filters, page_size: PAGE_SIZE })}`, signal);
      ui.daily.hidden = false;
      drawDaily(stationId, year, rows);
      ui.dailyCsv.href = `/api/weather?${query({ ...filters, format: "csv" })}`;
      ui.dailyCsv.hidden = false;
      ui.dailyChart.dataset.state = "ready";
      say(`${stationId}, ${year}: ${rows.length} days with data.`);
      if (fromChart) {
        ui.daily.scrollIntoView({ behavior: "smooth", block: "start" });
      }
    } catch (error) {
      if (signal.aborted) {
        return; // a newer choice took over
      }
      ui.dailyChart.dataset.state = "error";
      showError(error);
    }
  }

  // ---- the station list ------------------------------------------------------------------

  /** The id and NOAA's name, or the id alone for a station without metadata. */
  function stationTitle(stationId) {
    const station = stationsById.get(stationId);
    return station && station.name ? `${stationId} ${station.name}` : stationId;
  }

  function stationLabel(station) {
    const span = [station.first_date, station.last_date]
      .map((date) => (date ? date.slice(0, 4) : "?"))
      .join("–");
    const days = station.observations.toLocaleString("en");
    return `${stationTitle(station.station_id)} (${span}, ${days} days)`;
  }

  function showStations() {
    const needle = ui.search.value.trim().toUpperCase();
    const matching = stations.filter(
      (station) =>
        station.station_id.toUpperCase().includes(needle) ||
        (station.name || "").toUpperCase().includes(needle),
    );
    const selected = ui.station.value;
    ui.station.replaceChildren(
      ...matching.map((station) => {
        const option = new Option(stationLabel(station), station.station_id);
        option.selected = station.station_id === selected;
        return option;
      }),
    );
    ui.count.textContent = needle
      ? `${matching.length} of ${stations.length} stations match.`
      : `${stations.length} stations.`;
  }

  function stationChosenInList() {
    clearTimeout(chooseTimer);
    const stationId = ui.station.value;
    if (stationId && stationId !== current.station) {
      chooseTimer = setTimeout(() => chooseStation(stationId), CHOOSE_DELAY_MS);
    }
  }

  /** Choose a station from outside the list (the map), exactly as choosing it in the list. */
  function pickStation(stationId) {
    if (![...ui.station.options].some((option) => option.value === stationId)) {
      ui.search.value = ""; // the search hid it: show every station again
      showStations();
    }
    ui.station.value = stationId;
    clearTimeout(chooseTimer);
    if (stationId !== current.station) {
      chooseStation(stationId);
    }
  }

  // ---- the map ---------------------------------------------------------------------------

  function hasPosition(station) {
    return typeof station.latitude === "number" && typeof station.longitude === "number";
  }

  function plural(count, one, many) {
    return `${count.toLocaleString("en")} ${count === 1 ? one : many}`;
  }

  /** Longitude and latitude to CSS pixels: one scale for both, fitted to the bounding box
   * of the stations with a margin, centred in the canvas. */
  function projection(located, width) {
    const lons = located.map((station) => station.longitude);
    const lats = located.map((station) => station.latitude);
    const padded = (values) => {
      // A loop, not Math.min(...values): 130,000 arguments overflow the stack.
      let low = Infinity;
      let high = -Infinity;
      for (const value of values) {
        low = Math.min(low, value);
        high = Math.max(high, value);
      }
      const span = Math.max(high - low, MAP_MIN_SPAN_DEG);
      const middle = (low + high) / 2;
      const half = span / 2 + span * MAP_MARGIN;
      return [middle - half, middle + half];
    };
    const [west, east] = padded(lons);
    const [south, north] = padded(lats);
    const scale = Math.min(width / (east - west), MAP_MAX_HEIGHT_PX / (north - south));
    const height = Math.round(
      Math.min(MAP_MAX_HEIGHT_PX, Math.max(MAP_MIN_HEIGHT_PX, (north - south) * scale)),
    );
    const left = (width - (east - west) * scale) / 2;
    const top = (height - (north - south) * scale) / 2;
    return {
      width,
      height,
      west,
      east,
      south,
      north,
      x: (lon) => left + (lon - west) * scale,
      y: (lat) => top + (north - lat) * scale,
    };
  }

  function degrees(value, positive, negative) {
    const rounded = Math.round(Math.abs(value) * 10) / 10;
    if (rounded === 0) {
      return "0°";
    }
    return `${rounded}°${value > 0 ? positive : negative}`;
  }

  /** Parallels and meridians every few degrees, labelled, so the dots have a frame. */
  function drawGraticule(ctx, view, colors) {
    const span = Math.max(view.east - view.west, view.north - view.south);
    const step = GRATICULE_STEPS_DEG.find((candidate) => span / candidate <= 6) || 90;
    ctx.strokeStyle = colors.grid;
    ctx.lineWidth = 1;
    ctx.fillStyle = colors.muted;
    ctx.font = "11px system-ui, sans-serif";
    ctx.beginPath();
    for (let lon = Math.ceil(view.west / step) * step; lon <= view.east; lon += step) {
      const x = Math.round(view.x(lon)) + 0.5;
      ctx.moveTo(x, 0);
      ctx.lineTo(x, view.height);
      ctx.fillText(degrees(lon, "E", "W"), x + 3, view.height - 4);
    }
    for (let lat = Math.ceil(view.south / step) * step; lat <= view.north; lat += step) {
      const y = Math.round(view.y(lat)) + 0.5;
      ctx.moveTo(0, y);
      ctx.lineTo(view.width, y);
      ctx.fillText(degrees(lat, "N", "S"), 3, y - 3);
    }
    ctx.stroke();
    ctx.strokeRect(0.5, 0.5, view.width - 1, view.height - 1);
  }

  /** Every station with coordinates as a dot, on a picture kept for redrawing the choice. */
  function drawMap() {
    const located = stations.filter(hasPosition);
    const unplaced = stations.length - located.length;
    ui.map.hidden = !stations.length;
    if (!located.length) {
      map.dots = [];
      ui.mapCanvas.hidden = true;
      ui.map.dataset.dots = "0";
      ui.mapNote.textContent =
        `No map: none of the ${plural(stations.length, "station", "stations")} has ` +
        "coordinates yet (the station metadata is not loaded).";
      return;
    }
    ui.mapCanvas.hidden = false;
    const width = Math.max(200, Math.floor(ui.map.clientWidth));
    const view = projection(located, width);
    const ratio = window.devicePixelRatio || 1;
    const base = document.createElement("canvas");
    base.width = Math.round(view.width * ratio);
    base.height = Math.round(view.height * ratio);
    const ctx = base.getContext("2d");
    ctx.scale(ratio, ratio);
    const colors = palette();
    drawGraticule(ctx, view, colors);
    map.dots = located.map((station) => ({
      id: station.station_id,
      x: view.x(station.longitude),
      y: view.y(station.latitude),
    }));
    ctx.fillStyle = colors.dot;
    ctx.beginPath();
    for (const dot of map.dots) {
      ctx.moveTo(dot.x + DOT_RADIUS_PX, dot.y);
      ctx.arc(dot.x, dot.y, DOT_RADIUS_PX, 0, 2 * Math.PI);
    }
    ctx.fill();
    Object.assign(map, { width: view.width, height: view.height, base });
    ui.mapCanvas.width = base.width;
    ui.mapCanvas.height = base.height;
    ui.map.dataset.dots = String(map.dots.length);
    ui.mapNote.textContent =
      `${plural(map.dots.length, "station", "stations")} on the map` +
      (unplaced ? `; ${plural(unplaced, "station", "stations")} without coordinates ` +
        `${unplaced === 1 ? "is" : "are"} not shown. ` : ". ") +
      "Click a dot to choose its station; the list above does the same with the keyboard.";
    markChosenStation();
  }

  /** The dots, then the chosen station's dot on top, larger, ringed. */
  function markChosenStation() {
    if (!map.base) {
      return;
    }
    const ctx = ui.mapCanvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, ui.mapCanvas.width, ui.mapCanvas.height);
    ctx.drawImage(map.base, 0, 0);
    const chosen = map.dots.find((dot) => dot.id === current.station);
    ui.map.dataset.selected = chosen ? chosen.id : "";
    if (!chosen) {
      return;
    }
    const ratio = ui.mapCanvas.width / map.width;
    const colors = palette();
    ctx.scale(ratio, ratio);
    ctx.beginPath();
    ctx.arc(chosen.x, chosen.y, CHOSEN_RADIUS_PX, 0, 2 * Math.PI);
    ctx.fillStyle = colors.chosenDot;
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = colors.text;
    ctx.stroke();
  }

  /** The dot under the pointer, if one is within reach. */
  function dotAt(event) {
    const box = ui.mapCanvas.getBoundingClientRect();
    const x = ((event.clientX - box.left) * map.width) / box.width;
    const y = ((event.clientY - box.top) * map.height) / box.height;
    let nearest = null;
    let nearestSquared = HIT_RADIUS_PX * HIT_RADIUS_PX;
    for (const dot of map.dots) {
      const squared = (dot.x - x) ** 2 + (dot.y - y) ** 2;
      if (squared <= nearestSquared) {
        nearest = dot;
        nearestSquared = squared;
      }
    }
    return nearest;
  }

  ui.mapCanvas.addEventListener("click", (event) => {
    const dot = dotAt(event);
    if (dot) {
      pickStation(dot.id);
    }
  });
  ui.mapCanvas.addEventListener("mousemove", (event) => {
    const dot = dotAt(event);
    ui.mapCanvas.classList.toggle("on-dot", Boolean(dot));
    ui.mapCanvas.title = dot ? stationTitle(dot.id) : "";
  });

  // ---- start -----------------------------------------------------------------------------

  async function loadStations() {
    try {
      stations = await fetchAll(`/api/stations?${query({ page_size: PAGE_SIZE })}`);
    } catch (error) {
      ui.count.textContent = "The stations could not be loaded.";
      showError(error);
      return;
    }
    stationsById = new Map(stations.map((station) => [station.station_id, station]));
    ui.station.disabled = false;
    ui.station.dataset.count = String(stations.length);
    showStations();
    drawMap();
    if (!stations.length) {
      say("No stations yet: run the job first (`wxhub run data/wx_data`).");
      return;
    }
    const wanted = new URLSearchParams(window.location.hash.slice(1));
    const stationId = wanted.get("station");
    if (stationId && stations.some((station) => station.station_id === stationId)) {
      ui.station.value = stationId;
      chooseStation(stationId, Number(wanted.get("year")) || null);
    } else {
      say("Choose a station.");
    }
  }

  ui.search.addEventListener("input", showStations);
  ui.search.addEventListener("keydown", (event) => {
    // Enter takes the first match; the down arrow moves into the list.
    if ((event.key === "Enter" || event.key === "ArrowDown") && ui.station.options.length) {
      event.preventDefault();
      if (event.key === "Enter") {
        ui.station.selectedIndex = 0;
        stationChosenInList();
      }
      ui.station.focus();
    }
  });
  ui.station.addEventListener("change", stationChosenInList);
  ui.year.addEventListener("change", () => {
    if (ui.year.value) {
      chooseYear(Number(ui.year.value), false);
    }
  });

  // The charts and the map follow the page's width (a phone held upright is 375 px).
  let resizeTimer = null;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const [name, figure] of [["yearly", ui.yearlyChart], ["daily", ui.dailyChart]]) {
        if (charts[name] && figure.clientWidth) {
          charts[name].setSize(chartSize(figure));
        }
      }
      if (map.base && Math.floor(ui.map.clientWidth) !== map.width) {
        drawMap();
      }
    }, 100);
  }).observe(document.querySelector("main"));

  loadStations();
})();

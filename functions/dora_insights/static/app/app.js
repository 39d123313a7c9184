/* DORA insights dashboard (served at /app/, see docs/dashboard.md).
 *
 * A single page that reads the service's existing API with the key the user signs in with: the key
 * lives in this tab's sessionStorage only and travels as "Authorization: Bearer" to this origin, never
 * in a URL or a cookie. Views are chosen by the URL's hash (#/overview, #/deployments/<id>, ...), so
 * every view can be bookmarked, and the server has one page to serve.
 *
 * Built without a framework (nothing to compile): DOM nodes are made with h() (text is always set as
 * text, never parsed as HTML), charts are uPlot (vendored, see tools/vendor.py) and every chart has its
 * data in a table beside it. Errors from the API are shown where the data would have been, with the
 * API's own message; a refused key (401) signs out and says so.
 */
(function () {
  "use strict";

  // ------------------------------------------------------------------------------------- session
  var KEY_ITEM = "dora.apiKey";
  var SPACE_ITEM = "dora.spaceId";
  var DEFAULT_SPACE = "Spaces-1";
  var session = {
    key: function () { return window.sessionStorage.getItem(KEY_ITEM); },
    space: function () { return window.sessionStorage.getItem(SPACE_ITEM) || DEFAULT_SPACE; },
    signIn: function (key, space) {
      window.sessionStorage.setItem(KEY_ITEM, key);
      window.sessionStorage.setItem(SPACE_ITEM, space);
    },
    signOut: function () { window.sessionStorage.removeItem(KEY_ITEM); },
  };

  // Where the API is: the page's own path without "/app/..." (a stage prefix, if any, stays).
  var ROOT = window.location.pathname.replace(/\/app(\/.*)?$/, "");

  // ------------------------------------------------------------------------------------- DOM helpers
  function h(tag, attrs) {
    var node = document.createElement(tag);
    var name;
    if (attrs) {
      for (name in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, name)) continue;
        var value = attrs[name];
        if (value === null || value === undefined || value === false) continue;
        if (name === "text") node.textContent = String(value);
        else if (name === "class") node.className = value;
        else if (name === "dataset") Object.keys(value).forEach(function (k) { if (value[k] !== null && value[k] !== undefined) node.dataset[k] = String(value[k]); });
        else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
        else if (value === true) node.setAttribute(name, "");
        else node.setAttribute(name, String(value));
      }
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  // A user-supplied name inside other text, isolated (Unicode bidi) so that a right-to-left name does not
  // reorder the words and numbers around it. Set as text, never parsed.
  function bdi(text) { return h("bdi", { text: text }); }

  // Several names, each isolated, separated by ``separator``.
  function bdiList(names, separator) {
    var out = [];
    names.forEach(function (name, i) { if (i) out.push(separator); out.push(bdi(name)); });
    return out;
  }

  function link(href, text, attrs) { return h("a", Object.assign({ href: href, text: text }, attrs || {})); }

  // An http(s) URL from stored data, as the absolute URL to link to; null for anything else (a
  // javascript:, data: or relative URL is never made a link: deployments carry any string there).
  function webUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      var url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) { return null; }
  }

  // A link that leaves the dashboard when ``href`` is an http(s) URL; otherwise ``content`` unlinked.
  function externalLink(href, content) {
    var safe = webUrl(href);
    var node = typeof content === "object" && content !== null;
    if (!safe) return node ? content : h("span", { text: content });
    return h("a", { href: safe, rel: "noreferrer noopener", target: "_blank", text: node ? null : content }, node ? content : null);
  }

  function hashLink(path, query) { return "#" + path + queryString(query); }

  function queryString(query) {
    var params = new URLSearchParams();
    Object.keys(query || {}).forEach(function (k) {
      var v = query[k];
      if (v !== null && v !== undefined && v !== "") params.set(k, v);
    });
    var text = params.toString();
    return text ? "?" + text : "";
  }

  function enc(value) { return encodeURIComponent(value); }

  // ------------------------------------------------------------------------------------- formatting
  // How numbers read, everywhere (the browser tests format /summary's figures with the same rules).
  function isNum(v) { return typeof v === "number" && isFinite(v); }

  function duration(seconds) {
    if (!isNum(seconds)) return "—";
    var sign = seconds < 0 ? "-" : "";
    var s = Math.abs(seconds);
    // Rounded first: 59.6 s carries over to "1 min", and what rounds to 0 has no sign ("0 s", not "-0 s").
    var whole = Math.round(s);
    if (whole < 60) return (whole ? sign : "") + whole + " s";
    var minutes = Math.round(s / 60);
    if (minutes < 60) return sign + minutes + " min";
    if (minutes < 24 * 60) {
      var hm = Math.floor(minutes / 60), mm = minutes % 60;
      return sign + hm + " h" + (mm ? " " + mm + " min" : "");
    }
    var hours = Math.round(s / 3600);
    var d = Math.floor(hours / 24), hh = hours % 24;
    return sign + d + " d" + (hh ? " " + hh + " h" : "");
  }

  function percent(rate) { return isNum(rate) ? (rate * 100).toFixed(1) + " %" : "—"; }

  function frequency(perDay) {
    if (!isNum(perDay)) return "—";
    return perDay >= 1 ? perDay.toFixed(1) + " per day" : (perDay * 7).toFixed(2) + " per week";
  }

  function count(n) { return isNum(n) ? String(n) : "—"; }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function when(iso) {
    if (!iso) return "—";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return String(iso);
    return date.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function day(iso) { return iso ? String(iso).slice(0, 10) : "—"; }

  function todayUtc() { return new Date().toISOString().slice(0, 10); }

  function addDays(isoDate, days) {
    var date = new Date(isoDate + "T00:00:00Z");
    date.setUTCDate(date.getUTCDate() + days);
    return date.toISOString().slice(0, 10);
  }

  // Octopus durations: "[-]H:MM:SS.f" with total hours (METRICS §4).
  function octopusSeconds(text) {
    if (text === null || text === undefined) return null;
    var found = /^(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(String(text));
    if (!found) return null;
    var seconds = Number(found[2]) * 3600 + Number(found[3]) * 60 + Number(found[4]);
    return found[1] ? -seconds : seconds;
  }

  function tierNode(tier, hasData) {
    if (tier) return h("span", { class: "tier tier-" + String(tier).toLowerCase(), text: tier });
    return h("span", { class: "tier tier-none", text: hasData ? "no DORA tier" : "no data" });
  }

  // ------------------------------------------------------------------------------------- the API
  function ApiError(status, message, body) {
    this.name = "ApiError";
    this.status = status;
    this.message = message;
    this.body = body;
  }
  ApiError.prototype = Object.create(Error.prototype);

  function apiMessage(body) {
    if (!body || typeof body !== "object") return typeof body === "string" ? body.slice(0, 300) : "";
    if (body.message) return String(body.message);
    if (body.ErrorMessage) return String(body.ErrorMessage);
    if (body.detail) return String(body.detail);
    if (Array.isArray(body.errors) && body.errors.length) {
      var first = body.errors[0];
      return typeof first === "string" ? first : String(first.detail || first.title || "");
    }
    return "";
  }

  // One request to the API: resolves {status, body, headers} for 2xx (and the statuses in `allow`),
  // rejects with an ApiError otherwise. A 401 signs out first (the key is wrong or was revoked).
  function request(path, params, options) {
    options = options || {};
    var url = ROOT + path + queryString(params);
    var key = options.key || session.key();
    if (!key) {
      // Signed out meanwhile (a queued read of a page left behind): nothing is sent without a key.
      var signedOut = new ApiError(401, "signed out", null);
      signedOut.handled = true;
      return Promise.reject(signedOut);
    }
    return window.fetch(url, {
      headers: { Authorization: "Bearer " + key, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    }).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
        var allowed = (options.allow || []).indexOf(response.status) >= 0;
        if (response.ok || allowed) return { status: response.status, body: body, headers: response.headers };
        var error = new ApiError(response.status, apiMessage(body) || response.statusText || "error", body);
        if (response.status === 401 && !options.key) {
          error.handled = true;
          if (session.key() === key) refused(error); // a late answer to a key signed out since: not this one's
        }
        throw error;
      });
    }, function (failure) {
      throw new ApiError(0, "the service could not be reached (" + (failure && failure.message ? failure.message : "network error") + ")", null);
    });
  }

  function spacePath(rest) { return "/api/" + enc(session.space()) + rest; }

  // Run `jobs` (functions returning promises) at most `limit` at a time; results in order.
  function pool(jobs, limit, onDone) {
    var results = new Array(jobs.length);
    var next = 0;
    function worker() {
      if (next >= jobs.length) return Promise.resolve();
      var index = next++;
      return jobs[index]().then(function (value) {
        results[index] = { ok: true, value: value };
      }, function (error) {
        results[index] = { ok: false, error: error };
      }).then(function () {
        if (onDone) onDone(index, results[index]);
        return worker();
      });
    }
    var workers = [];
    for (var i = 0; i < Math.min(limit, jobs.length); i++) workers.push(worker());
    return Promise.all(workers).then(function () { return results; });
  }

  // ------------------------------------------------------------------------------------- messages
  function errorBox(what, error, retry) {
    var status = error && error.status;
    var explanation;
    if (status === 0) explanation = "The service could not be reached: check the connection, then try again.";
    else if (status === 403) explanation = "This API key lacks the scope this needs (403): " + error.message;
    else if (status === 404) explanation = "Not found (404): " + error.message;
    else if (status) explanation = "The API answered " + status + ": " + error.message;
    else explanation = "Something went wrong in the page: " + (error && error.message ? error.message : String(error));
    return h("div", { class: "error-box", role: "alert", dataset: { status: status === undefined ? "" : status } },
      h("p", null, h("strong", { text: "Could not load " + what + "." })),
      h("p", { text: explanation }),
      retry ? h("button", { type: "button", onclick: retry, text: "Try again" }) : null);
  }

  // The rejection handler of a view's main request: unless it was handled already (signed out) or the
  // view was left meanwhile, ``holder`` shows what could not be loaded, with ``retry`` as Try again.
  function failInto(holder, what, view, retry) {
    return function (error) {
      if (error.handled || !view.live()) return;
      clear(holder);
      holder.setAttribute("aria-busy", "false");
      holder.appendChild(errorBox(what, error, retry));
    };
  }

  function freshnessLine(asOf, pending, what) {
    var waiting = isNum(pending) ? pending : null;
    var text = asOf ? "Figures as of " + when(asOf) : "No figures computed yet";
    if (waiting !== null) text += "; " + plural(waiting, "stream", "streams") + " pending";
    text += ".";
    if (waiting) text += " The scheduled recompute (every 5 minutes) brings " + (what || "them") + " in.";
    return h("p", { class: "freshness", role: "status", dataset: { asOf: asOf || "", pending: waiting === null ? "" : waiting }, text: text });
  }

  function headerFreshness(headers, what) {
    var asOf = headers.get("X-Dora-As-Of");
    var pending = headers.get("X-Dora-Pending");
    if (asOf === null && pending === null) return null;
    return freshnessLine(asOf, pending === null ? null : Number(pending), what);
  }

  // ------------------------------------------------------------------------------------- charts
  var mounted = [];
  // Series told apart without colour too: 7 dashes against the 6 colours, so no two of the first 42
  // series share both.
  var DASHES = [null, [6, 4], [2, 3], [10, 3, 2, 3], [1, 4], [8, 2], [4, 2, 1, 2]];
  var COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

  function cssVar(name) { return window.getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  // The value axis of a kind: durations in hours or days, rates in percent, counts as they are.
  function axisFor(kind, series) {
    if (kind === "duration") {
      var max = 0;
      series.forEach(function (s) { s.values.forEach(function (v) { if (isNum(v)) max = Math.max(max, Math.abs(v)); }); });
      var days = max >= 72 * 3600;
      return { unit: days ? "days" : "hours", scale: function (v) { return isNum(v) ? v / (days ? 86400 : 3600) : null; }, cell: duration };
    }
    if (kind === "percent") return { unit: "%", scale: function (v) { return isNum(v) ? v * 100 : null; }, cell: percent };
    return { unit: "", scale: function (v) { return isNum(v) ? v : null; }, cell: count };
  }

  // A chart and the same data as a table. spec: {title, kind, labels (one per interval), x (unix
  // seconds per interval), series: [{name, values}], cell (optional: value -> table text)}.
  function chartFigure(spec) {
    var axis = axisFor(spec.kind, spec.series);
    var cell = spec.cell || axis.cell;
    var id = "chart-" + Math.random().toString(36).slice(2, 10);
    // The drawing is an image (its text alternative and table tell what it shows); the legend, drawn
    // by uPlot beside it, is not part of the image: its entries are buttons that hide or show a series.
    var plot = h("div", { class: "plot", role: "img", "aria-label": describe(spec, axis) });
    var legend = spec.series.length > 1 ? h("div", { class: "legend" }) : null;
    var table = h("table", null,
      h("caption", { text: spec.title + " (data)" }),
      h("thead", null, h("tr", null, h("th", { scope: "col", text: spec.intervalLabel || "Interval" }),
        spec.series.map(function (s) { return h("th", { scope: "col", class: "num", text: s.name }); }))),
      h("tbody", null, spec.labels.map(function (label, i) {
        return h("tr", null, h("th", { scope: "row", text: label }),
          spec.series.map(function (s) { return h("td", { class: "num", text: cell(s.values[i], i, s) }); }));
      })));
    var empty = !spec.series.some(function (s) { return s.values.some(isNum); });
    var figure = h("figure", { class: "chart", "aria-labelledby": id, dataset: { chart: spec.key || spec.title, intervals: spec.labels.length } },
      h("figcaption", { id: id, text: spec.title + (axis.unit ? " (" + axis.unit + ")" : "") }),
      empty ? h("p", { class: "hint", text: "No data in any interval of this range." }) : null,
      plot,
      legend,
      h("details", null, h("summary", { text: "Show the data as a table" }), h("div", { class: "table-wrap" }, table)));
    figure._spec = { spec: spec, axis: axis, plot: plot, legend: legend };
    return figure;
  }

  function describe(spec, axis) {
    var n = spec.labels.length;
    var range = n ? " from " + spec.labels[0] + " to " + spec.labels[n - 1] : "";
    return "Line chart of " + spec.title + (axis.unit ? " in " + axis.unit : "") + ": " +
      plural(n, "point", "points") + range + " per series, " + plural(spec.series.length, "series", "series") +
      ". The same data is in the table below.";
  }

  // Draw a figure made by chartFigure once it is in the document (uPlot needs its width).
  function mountChart(figure) {
    var state = figure._spec;
    if (!state || typeof window.uPlot !== "function") {
      if (state) state.plot.appendChild(h("p", { class: "hint", text: "The chart library did not load: the data is in the table below." }));
      return;
    }
    var spec = state.spec, axis = state.axis;
    clear(state.plot);
    if (state.legend) clear(state.legend);
    var fg = cssVar("--fg"), grid = cssVar("--chart-grid");
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values.map(axis.scale); }));
    var width = Math.max(200, Math.floor(state.plot.getBoundingClientRect().width) || 320);
    var opts = {
      width: width,
      height: 220,
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { x: { time: true } },
      legend: {
        show: !!state.legend,
        // Outside the role=img drawing, so that its entries are reachable (children of an image are not).
        mount: function (u, table) { if (state.legend) state.legend.appendChild(table); },
      },
      hooks: { setSeries: [function (u, index) { legendPressed(u, index); }] },
      cursor: { drag: { x: false, y: false } },
      series: [{ label: spec.intervalLabel || "Interval", value: function (u, v) { return v === null ? "—" : new Date(v * 1000).toISOString().slice(0, 10); } }]
        .concat(spec.series.map(function (s, i) {
          var color = cssVar("--chart-" + ((i % 6) + 1));
          return {
            label: s.name,
            stroke: color,
            width: 2,
            dash: DASHES[i % DASHES.length] || undefined,
            spanGaps: false,
            points: { show: spec.x.length <= 60, size: 6, stroke: color, fill: color },
            value: function (u, v) { return v === null || v === undefined ? "—" : (Math.round(v * 100) / 100) + (axis.unit === "%" ? " %" : axis.unit ? " " + axis.unit : ""); },
          };
        })),
      axes: [
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 50, incrs: spec.kind === "count" ? COUNT_STEPS : undefined },
      ],
    };
    var chart = new window.uPlot(opts, data, state.plot);
    if (state.legend) legendKeys(chart);
    figure.dataset.points = String(chart.data[0].length);
    figure.dataset.series = String(chart.data.length - 1);
    state.chart = chart;
    if (mounted.indexOf(figure) < 0) mounted.push(figure);
    if (!state.observer && window.ResizeObserver) {
      state.observer = new window.ResizeObserver(function () {
        var w = Math.max(200, Math.floor(state.plot.getBoundingClientRect().width));
        if (state.chart && Math.abs(state.chart.width - w) > 2) state.chart.setSize({ width: w, height: 220 });
      });
      state.observer.observe(state.plot);
    }
  }

  // uPlot's legend rows hide or show their series on a click (on the row's header cell); by keyboard
  // too: each row but the first (the interval's) is a toggle button, Enter or Space clicks it the same
  // way, and aria-pressed says whether its series is shown.
  function legendKeys(chart) {
    var table = legendTable(chart);
    if (!table) return;
    table.setAttribute("role", "presentation");
    var rows = table.querySelectorAll("tr.u-series");
    for (var i = 1; i < rows.length; i++) {
      var row = rows[i];
      row.setAttribute("tabindex", "0");
      row.setAttribute("role", "button");
      row.setAttribute("aria-label", String(chart.series[i].label));
      row.addEventListener("keydown", keyToClick);
      legendPressed(chart, i);
    }
  }

  function keyToClick(event) {
    if (event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    var cell = event.currentTarget.querySelector("th");
    if (cell) cell.click();
  }

  function legendTable(chart) {
    var figure = chart.root.closest("figure.chart");
    return figure ? figure.querySelector(".legend .u-legend") : null;
  }

  function legendPressed(chart, index) {
    var table = legendTable(chart);
    var row = table && index > 0 ? table.querySelectorAll("tr.u-series")[index] : null;
    if (row) row.setAttribute("aria-pressed", chart.series[index].show === false ? "false" : "true");
  }

  function unmountCharts() {
    mounted.forEach(function (figure) {
      var state = figure._spec;
      if (state.observer) state.observer.disconnect();
      if (state.chart) state.chart.destroy();
      if (state.legend) clear(state.legend);
      state.chart = null;
      state.observer = null;
    });
    mounted = [];
  }

  // Redraw with the other theme's colours when the system switches between light and dark.
  if (window.matchMedia) {
    var scheme = window.matchMedia("(prefers-color-scheme: dark)");
    var redraw = function () {
      mounted.slice().forEach(function (figure) {
        var state = figure._spec;
        if (state.chart) { state.chart.destroy(); state.chart = null; }
        mountChart(figure);
      });
    };
    if (scheme.addEventListener) scheme.addEventListener("change", redraw);
    else if (scheme.addListener) scheme.addListener(redraw);
  }

  // ------------------------------------------------------------------------------------- tables
  // A table whose columns can be sorted (a button in each sortable header, aria-sort on the column).
  // columns: [{label, key (row -> sortable value), cell (row -> node/text), num}]
  function sortableTable(caption, columns, rows, initial) {
    var sort = initial || { index: -1, direction: "ascending" };
    var tbody = h("tbody");
    var headers = columns.map(function (column, index) {
      var th = h("th", { scope: "col", class: column.num ? "num" : null });
      if (column.key) {
        th.setAttribute("aria-sort", "none");
        th.appendChild(h("button", {
          type: "button", class: "sort", text: column.label,
          onclick: function () {
            sort = { index: index, direction: sort.index === index && sort.direction === "ascending" ? "descending" : "ascending" };
            render();
          },
        }));
      } else {
        th.textContent = column.label;
      }
      return th;
    });
    function compare(a, b) {
      var key = columns[sort.index].key;
      var x = key(a), y = key(b);
      var missingX = x === null || x === undefined, missingY = y === null || y === undefined;
      if (missingX || missingY) return missingX === missingY ? 0 : missingX ? 1 : -1; // no data last
      var order = typeof x === "string" ? x.localeCompare(y) : x - y;
      return sort.direction === "ascending" ? order : -order;
    }
    function render() {
      var ordered = rows.slice();
      if (sort.index >= 0) ordered.sort(compare);
      headers.forEach(function (th, index) { if (columns[index].key) th.setAttribute("aria-sort", index === sort.index ? sort.direction : "none"); });
      clear(tbody);
      ordered.forEach(function (row) {
        tbody.appendChild(h("tr", null, columns.map(function (column, index) {
          return h(index === 0 ? "th" : "td", { scope: index === 0 ? "row" : null, class: column.num ? "num" : null }, column.cell(row));
        })));
      });
    }
    render();
    var table = h("table", null, h("caption", { text: caption }), h("thead", null, h("tr", null, headers)), tbody);
    return { node: h("div", { class: "table-wrap" }, table), refresh: render };
  }

  function simpleTable(caption, head, rows) {
    return h("div", { class: "table-wrap" }, h("table", null, h("caption", { text: caption }),
      h("thead", null, h("tr", null, head.map(function (c) { return h("th", { scope: "col", class: c.num ? "num" : null, text: c.label }); }))),
      h("tbody", null, rows)));
  }

  // ------------------------------------------------------------------------------------- router
  var main, generation = 0;
  var VIEWS = [
    [/^\/?$/, function () { window.location.replace("#/overview"); }],
    [/^\/overview$/, viewOverview],
    [/^\/projects$/, viewProjects],
    [/^\/projects\/([^/]+)$/, viewProject],
    [/^\/deployments$/, viewDeployments],
    [/^\/deployments\/([^/]+)$/, viewDeployment],
    [/^\/failures$/, viewFailures],
    [/^\/reports$/, viewReports],
    [/^\/reports\/([^/]+)$/, viewReport],
    [/^\/insights$/, viewInsights],
  ];

  function parseHash() {
    var raw = window.location.hash.replace(/^#/, "");
    var at = raw.indexOf("?");
    var path = at >= 0 ? raw.slice(0, at) : raw;
    return { path: path, query: new URLSearchParams(at >= 0 ? raw.slice(at + 1) : "") };
  }

  // A view renders into `main`; `live()` is false once the user has moved on (drop late answers).
  function startView(title, navKey) {
    unmountCharts();
    generation += 1;
    var mine = generation;
    clear(main);
    document.title = title + " · DORA insights";
    document.querySelectorAll("#nav a[data-nav]").forEach(function (a) {
      if (a.dataset.nav === navKey) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    var heading = h("h1", { tabindex: "-1", text: title });
    main.appendChild(heading);
    if (started) heading.focus();
    started = true;
    return { heading: heading, live: function () { return mine === generation; } };
  }
  var started = false;

  function route() {
    var where = parseHash();
    if (!session.key()) { viewSignIn(null, where); return; }
    showChrome(true);
    for (var i = 0; i < VIEWS.length; i++) {
      var found = VIEWS[i][0].exec(where.path);
      if (found) {
        try {
          var args = found.slice(1).map(function (p) { return decodeURIComponent(p); });
          var result = VIEWS[i][1].apply(null, [where.query].concat(args));
          if (result && typeof result.catch === "function") result.catch(function (error) { pageFailure(error); });
        } catch (error) {
          if (error instanceof URIError) break; // a malformed link: the "no page" answer below
          pageFailure(error);
        }
        return;
      }
    }
    var view = startView("Not found", null);
    main.appendChild(h("div", { class: "error-box", role: "alert" },
      h("p", { text: "There is no page at " + window.location.hash + "." }),
      h("p", null, link("#/overview", "Go to the overview"))));
    void view;
  }

  function pageFailure(error) {
    if (error && error.handled) return;
    main.appendChild(errorBox("this page", error, route));
  }

  function showChrome(signedIn) {
    document.getElementById("nav").hidden = !signedIn;
    document.getElementById("session").hidden = !signedIn;
    var label = clear(document.getElementById("space-label"));
    if (signedIn) append(label, ["Space ", bdi(session.space())]);
  }

  // ------------------------------------------------------------------------------------- sign-in
  var signInNotice = null;

  function refused(error) {
    if (!session.key()) return; // another request already reported it
    session.signOut();
    signInNotice = "The API refused the key (401: " + error.message + "). It is wrong or has been revoked: sign in with a valid key.";
    route();
  }

  function viewSignIn(_query, where) {
    showChrome(false);
    var view = startView("Sign in", null);
    var message = h("div", { id: "signin-message", role: "alert" });
    if (signInNotice) message.appendChild(h("div", { class: "error-box", text: signInNotice })); // until the next sign-in
    var space = h("input", { name: "spaceId", id: "signin-space", required: true, autocomplete: "off", value: session.space(), maxlength: "100" });
    var key = h("input", { name: "apiKey", id: "signin-key", type: "password", required: true, autocomplete: "off", spellcheck: "false" });
    var submit = h("button", { type: "submit", class: "primary", text: "Sign in" });
    // Said politely while the key is checked (the button keeps focus: it is marked busy, not disabled).
    var progress = h("p", { id: "signin-status", class: "visually-hidden", role: "status" });
    var form = h("form", { class: "signin", method: "post", action: "#", "aria-describedby": "signin-hint" },
      h("p", { id: "signin-hint", class: "hint", text: "Sign in with an API key that has read scopes (deployments:read, reports:read, insight:read). " +
        "The key stays in this browser tab's session storage and is sent only to this service's API; signing out or closing the tab forgets it." }),
      h("label", { for: "signin-space" }, "Space", space),
      h("label", { for: "signin-key" }, "API key", key),
      submit,
      progress,
      message);
    var checking = false;
    // An error about a field: shown in the alert region, and the field says it is invalid and which
    // message describes it (until the next submit).
    function fieldError(input, text) {
      message.appendChild(h("div", { class: "error-box", id: "signin-error", text: text }));
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "signin-error");
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (checking) return;
      var keyValue = key.value.trim(), spaceValue = space.value.trim() || DEFAULT_SPACE;
      clear(message);
      [space, key].forEach(function (input) { input.removeAttribute("aria-invalid"); input.removeAttribute("aria-describedby"); });
      if (!keyValue) {
        fieldError(key, "Enter an API key.");
        key.focus();
        return;
      }
      checking = true;
      submit.setAttribute("aria-disabled", "true");
      submit.textContent = "Checking the key…";
      progress.textContent = "Checking the key…";
      // Any read the key may be allowed: 2xx or 403 (a valid key without deployments:read) signs in.
      request("/api/" + enc(spaceValue) + "/projects", { take: 1 }, { key: keyValue, allow: [403] }).then(function () {
        session.signIn(keyValue, spaceValue);
        signInNotice = null;
        var target = where && where.path && where.path !== "/signin" ? window.location.hash : "#/overview";
        if (window.location.hash === target) route();
        else window.location.hash = target;
      }, function (error) {
        var text;
        if (error.status === 401) text = "That API key was refused (401: " + error.message + "). It is wrong or has been revoked.";
        else if (error.status === 404) text = "Space “" + spaceValue + "” was not found for this key (404). A key acts only in its own space: check the space.";
        else if (error.status === 0) text = "The service could not be reached. Check the connection and try again.";
        else text = "The API answered " + error.status + ": " + error.message;
        checking = false;
        progress.textContent = "";
        fieldError(error.status === 404 ? space : key, text);
        submit.removeAttribute("aria-disabled");
        submit.textContent = "Sign in";
        key.focus();
      });
    });
    main.appendChild(form);
    void view;
  }

  // ------------------------------------------------------------------------------------- filters
  // The range every figure view reads: dates (UTC, inclusive) in the hash, instants for the API.
  function rangeOf(query) {
    var to = query.get("to") || todayUtc();
    var from = query.get("from") || addDays(to, -89);
    return { from: from, to: to };
  }

  // /summary counts [from, to): the range's last day whole is the next day's start.
  function apiRange(range) {
    return { from: range.from + "T00:00:00Z", to: addDays(range.to, 1) + "T00:00:00Z" };
  }

  // The lists (deployments, failures) take `to` inclusive: a whole last day ends at its last millisecond
  // (the next day's start would list what finished at midnight after it).
  function dayStart(date) { return date ? date + "T00:00:00Z" : null; }
  function dayEnd(date) { return date ? date + "T23:59:59.999Z" : null; }
  function listRange(range) { return { from: dayStart(range.from), to: dayEnd(range.to) }; }

  function field(label, control) {
    control.id = control.id || "f-" + control.name;
    return h("label", { for: control.id }, label, control);
  }

  function dateInput(name, value) { return h("input", { type: "date", name: name, value: value, required: true }); }

  function select(name, options, value) {
    var node = h("select", { name: name });
    options.forEach(function (o) { node.appendChild(h("option", { value: o[0], text: o[1], selected: o[0] === value })); });
    if (value && !options.some(function (o) { return o[0] === value; })) node.appendChild(h("option", { value: value, text: value, selected: true }));
    return node;
  }

  // Fill a select with catalogue entries (projects, environments) once they are known.
  function fillSelect(node, items, first) {
    var value = node.value;
    // A link may name an entry by its name (the API takes either): that entry, by its id, not a second one.
    var named = items.filter(function (i) { return i.Id !== value && String(i.Name).toLowerCase() === String(value).toLowerCase(); });
    if (value && !items.some(function (i) { return i.Id === value; }) && named.length === 1) value = named[0].Id;
    clear(node);
    node.appendChild(h("option", { value: "", text: first }));
    items.forEach(function (item) { node.appendChild(h("option", { value: item.Id, text: item.Name, selected: item.Id === value })); });
    if (value && !items.some(function (i) { return i.Id === value; })) node.appendChild(h("option", { value: value, text: value, selected: true }));
    node.value = value;
  }

  var catalogueCache = {};
  // Every entry of a catalogue list (Octopus paging: skip/take), cached for the session.
  function catalogue(kind) {
    var cacheKey = session.space() + "/" + kind;
    if (catalogueCache[cacheKey]) return catalogueCache[cacheKey];
    var take = 100, items = [];
    function page(skip) {
      return request(spacePath("/" + kind), { skip: skip, take: take }).then(function (answer) {
        items = items.concat(answer.body.Items || []);
        var total = answer.body.TotalResults || 0;
        if (items.length < total && skip + take < 2000 && (answer.body.Items || []).length) return page(skip + take);
        return items;
      });
    }
    var promise = page(0);
    catalogueCache[cacheKey] = promise;
    promise.catch(function () { delete catalogueCache[cacheKey]; });
    return promise;
  }

  function filterForm(controls, onSubmit, extra) {
    var form = h("form", { class: "filters", role: "search", "aria-label": "Filters" }, controls,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", text: "Apply" }), extra || null));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var values = {};
      new FormData(form).forEach(function (value, name) { values[name] = String(value); });
      onSubmit(values);
    });
    return form;
  }

  function go(path, query) {
    var target = hashLink(path, query);
    if (window.location.hash === target) route();
    else window.location.hash = target;
  }

  // ------------------------------------------------------------------------------------- overview
  var HEADLINES = [
    { metric: "deployment_frequency", label: "Deployment frequency" },
    { metric: "lead_time", label: "Change lead time" },
    { metric: "change_failure_rate", label: "Change failure rate" },
    { metric: "recovery_time", label: "Failed deployment recovery time" },
    { metric: "rework_rate", label: "Rework rate" },
  ];

  // A headline figure: its value as the API gives it (formatted), its tier and how it was counted.
  function headline(metric, summary) {
    var data = summary[metric] || {};
    var value, raw, detail, hasData, tier = data.tier || null;
    if (metric === "deployment_frequency") {
      raw = data.per_day; value = frequency(raw); hasData = (data.successful_deployments || 0) > 0;
      detail = plural(data.successful_deployments || 0, "successful deployment", "successful deployments") + " on " +
        plural(data.deployment_days || 0, "day", "days") + " (" + (isNum(raw) ? raw : "—") + " per day)";
    } else if (metric === "lead_time") {
      raw = data.median_seconds; value = duration(raw); hasData = isNum(raw);
      detail = "median of " + plural(data.count || 0, "deployment", "deployments") + (isNum(data.p95_seconds) ? "; 95th percentile " + duration(data.p95_seconds) : "");
    } else if (metric === "change_failure_rate") {
      raw = data.rate; hasData = (data.deployments || 0) > 0; value = hasData ? percent(raw) : "—";
      detail = (data.change_failures || 0) + " of " + plural(data.deployments || 0, "deployment", "deployments") + " (rollbacks excluded)";
    } else if (metric === "recovery_time") {
      raw = data.median_seconds; value = duration(raw); hasData = isNum(raw);
      detail = "median of " + plural(data.count || 0, "recovery", "recoveries") + " after a failed deployment";
    } else {
      raw = data.rate; hasData = (data.deployments || 0) > 0; value = hasData ? percent(raw) : "—";
      detail = (data.rework_deployments || 0) + " of " + plural(data.deployments || 0, "deployment", "deployments") + " were rework";
    }
    return { value: value, raw: raw, tier: tier, hasData: hasData, detail: detail };
  }

  function headlineCard(spec, summary) {
    var figure = summary ? headline(spec.metric, summary) : null;
    var card = h("article", { class: "metric", "aria-labelledby": "m-" + spec.metric, dataset: { metric: spec.metric, state: summary ? "ready" : "loading" } },
      h("h3", { class: "label", id: "m-" + spec.metric, text: spec.label }));
    if (!figure) { card.appendChild(h("p", { class: "value", text: "…" })); return card; }
    card.dataset.value = figure.raw === null || figure.raw === undefined ? "" : String(figure.raw);
    card.dataset.tier = figure.tier || "";
    card.appendChild(h("p", { class: "value", text: figure.value }));
    card.appendChild(tierNode(figure.tier, figure.hasData && spec.metric === "rework_rate"));
    card.appendChild(h("p", { class: "detail", text: figure.detail }));
    return card;
  }

  // The weeks (Sunday to Saturday, UTC, as a report's Weekly intervals) a range touches, clipped to it;
  // months past a year of weeks, so a long range stays a few dozen reads.
  function buckets(range) {
    var end = addDays(range.to, 1);
    var out = [];
    var spanDays = (Date.parse(end) - Date.parse(range.from)) / 86400000;
    if (spanDays <= 7 * 53) {
      var first = new Date(range.from + "T00:00:00Z");
      var start = addDays(range.from, -first.getUTCDay());
      for (var week = start; week < end; week = addDays(week, 7)) {
        out.push({ label: week, x: Date.parse(week) / 1000, from: week < range.from ? range.from : week, to: addDays(week, 7) > end ? end : addDays(week, 7) });
      }
      return { unit: "Week of", title: "Weekly", items: out };
    }
    var month = range.from.slice(0, 7) + "-01";
    while (month < end) {
      var next = new Date(month + "T00:00:00Z");
      next.setUTCMonth(next.getUTCMonth() + 1);
      var nextMonth = next.toISOString().slice(0, 10);
      out.push({ label: month.slice(0, 7), x: Date.parse(month) / 1000, from: month < range.from ? range.from : month, to: nextMonth > end ? end : nextMonth });
      month = nextMonth;
    }
    return { unit: "Month", title: "Monthly", items: out };
  }

  var TREND_CHARTS = [
    { metric: "deployment_frequency", title: "Successful deployments", kind: "count", pick: function (s) { return s.deployment_frequency.successful_deployments; } },
    { metric: "lead_time", title: "Change lead time (median)", kind: "duration", pick: function (s) { return s.lead_time.median_seconds; } },
    { metric: "change_failure_rate", title: "Change failure rate", kind: "percent", pick: function (s) { return s.change_failure_rate.deployments ? s.change_failure_rate.rate : null; } },
    { metric: "recovery_time", title: "Failed deployment recovery time (median)", kind: "duration", pick: function (s) { return s.recovery_time.median_seconds; } },
    { metric: "rework_rate", title: "Rework rate", kind: "percent", pick: function (s) { return s.rework_rate.deployments ? s.rework_rate.rate : null; } },
  ];

  function viewOverview(query, projectId, projectName) {
    var range = rangeOf(query);
    var project = projectId || query.get("project") || "";
    var environment = query.get("environment") || "";
    var benchmark = query.get("benchmark") || "";
    var view = startView(projectId ? "Project " + (projectName || projectId) : "Overview", projectId ? "projects" : "overview");
    if (projectId) append(clear(view.heading), ["Project ", bdi(projectName || projectId)]);
    var here = projectId ? "/projects/" + enc(projectId) : "/overview";

    var projectSelect = select("project", [["", "All projects"]], project);
    var environmentSelect = select("environment", [["", "Space default (settings)"]], environment);
    var controls = [
      field("From", dateInput("from", range.from)),
      field("To", dateInput("to", range.to)),
      projectId ? null : field("Project", projectSelect),
      field("Environment", environmentSelect),
      field("Benchmark", select("benchmark", [["", "Space default"], ["2021", "DORA 2021"], ["2023", "DORA 2023"], ["2024", "DORA 2024"]], benchmark)),
    ];
    main.appendChild(filterForm(controls, function (values) {
      go(projectId ? "/projects/" + enc(projectId) : "/overview", values);
    }));

    var cards = h("div", { class: "cards", id: "headlines" }, HEADLINES.map(function (spec) { return headlineCard(spec, null); }));
    var headlineSection = h("section", { "aria-labelledby": "h-headline", "aria-busy": "true", id: "headline" },
      h("h2", { id: "h-headline", text: "The four keys and rework rate" }), cards);
    var freshness = h("div", { id: "freshness" });
    var trends = h("section", { "aria-labelledby": "h-trends", id: "trends" }, h("h2", { id: "h-trends", text: "Trends" }));
    main.appendChild(headlineSection);
    main.appendChild(freshness);
    main.appendChild(trends);

    var params = Object.assign(apiRange(range), { project: project, environment: environment, benchmark: benchmark });
    // The headline first (one read), then what the filters and trends need: the first render waits for nothing else.
    return request(spacePath("/summary"), params).then(function (answer) {
      if (!view.live()) return;
      var summary = answer.body;
      clear(cards);
      HEADLINES.forEach(function (spec) { cards.appendChild(headlineCard(spec, summary)); });
      cards.appendChild(secondaryCard(summary));
      headlineSection.setAttribute("aria-busy", "false");
      freshness.appendChild(freshnessLine(summary.as_of, summary.pending));
      freshness.appendChild(h("p", { class: "hint", text: scopeText(summary) }));
      if (window.performance && window.performance.mark) window.performance.mark("dora:overview-ready");
      document.body.dataset.overviewReady = "1";
      loadCatalogue(projectSelect, environmentSelect, view);
      var trendsDone = loadTrends(trends, range, params, view);
      if (projectId) return trendsDone.then(function () { if (view.live()) recentDeployments(projectId, range, view); });
      return trendsDone;
    }, function (error) {
      if (error.handled || !view.live()) return;
      headlineSection.setAttribute("aria-busy", "false");
      clear(cards);
      headlineSection.appendChild(errorBox("the summary", error, route));
      loadCatalogue(projectSelect, environmentSelect, view);
    });
  }

  function secondaryCard(summary) {
    var restore = summary.time_to_restore || {};
    var card = h("article", { class: "metric", dataset: { figure: "time_to_restore" } },
      h("h3", { class: "label", text: "Incident time to restore" }),
      h("p", { class: "value", text: duration(restore.median_seconds) }),
      tierNode(restore.tier || null, false),
      h("p", { class: "detail", text: "median of " + plural(restore.count || 0, "finished failure event", "finished failure events") }));
    return card;
  }

  function scopeText(summary) {
    var scope = summary.environment_scope || {};
    var names = (scope.environments || []).join(", ");
    var how = {
      parameter: "the environment chosen",
      default_environment: "the space's default environment",
      production_environments: "the space's production environments",
      all: "every environment",
    }[scope.source] || scope.source || "";
    return plural(summary.deployments || 0, "deployment", "deployments") + " finished in range, counting " + how +
      (names ? " (" + names + ")" : "") + "; tiers from the DORA " + summary.benchmark + " benchmark.";
  }

  function loadCatalogue(projectSelect, environmentSelect, view) {
    catalogue("projects").then(function (items) { if (view.live()) fillSelect(projectSelect, items, "All projects"); }, function () {});
    catalogue("environments").then(function (items) { if (view.live()) fillSelect(environmentSelect, items, "Space default (settings)"); }, function () {});
  }

  function loadTrends(section, range, params, view) {
    var plan = buckets(range);
    section.querySelector("h2").textContent = plan.title + " trends";
    var progress = h("p", { class: "loading", role: "status", text: "Loading " + plural(plan.items.length, "interval", "intervals") + "…" });
    section.appendChild(progress);
    var jobs = plan.items.map(function (bucket) {
      return function () {
        return request(spacePath("/summary"), Object.assign({}, params, { from: bucket.from + "T00:00:00Z", to: bucket.to + "T00:00:00Z" }));
      };
    });
    var done = 0;
    return pool(jobs, 3, function () {
      done += 1;
      if (view.live()) progress.textContent = "Loading " + done + " of " + plural(plan.items.length, "interval", "intervals") + "…";
    }).then(function (results) {
      if (!view.live()) return;
      progress.remove();
      var failed = results.filter(function (r) { return !r.ok; });
      if (failed.length) {
        if (failed[0].error.handled) return;
        section.appendChild(errorBox("the trends (" + failed.length + " of " + results.length + " intervals failed)", failed[0].error, route));
        return;
      }
      var summaries = results.map(function (r) { return r.value.body; });
      var grid = h("div", { class: "charts" });
      section.appendChild(grid);
      TREND_CHARTS.forEach(function (chart) {
        var figure = chartFigure({
          key: chart.metric,
          title: chart.title,
          kind: chart.kind,
          intervalLabel: plan.unit,
          labels: plan.items.map(function (b) { return b.label; }),
          x: plan.items.map(function (b) { return b.x; }),
          series: [{ name: chart.title, values: summaries.map(chart.pick) }],
        });
        grid.appendChild(figure);
        mountChart(figure);
      });
    });
  }

  function recentDeployments(projectId, range, view) {
    var section = h("section", { "aria-labelledby": "h-recent" }, h("h2", { id: "h-recent", text: "Recent deployments" }));
    main.appendChild(section);
    return request(spacePath("/deployments"), Object.assign(listRange(range), { project: projectId, limit: 10 })).then(function (answer) {
      if (!view.live()) return;
      section.appendChild(deploymentsTable(answer.body.items || [], "The latest deployments of this project in range"));
      section.appendChild(h("p", null, link(hashLink("/deployments", { project: projectId, from: range.from, to: range.to }), "All deployments of this project")));
    }, function (error) {
      if (!error.handled && view.live()) section.appendChild(errorBox("the deployments", error, route));
    });
  }

  // ------------------------------------------------------------------------------------- projects
  function figureCell(text, tier, hasData) { return [text, " ", tierNode(tier, hasData)]; }

  function viewProjects(query) {
    var range = rangeOf(query);
    var environment = query.get("environment") || "";
    var benchmark = query.get("benchmark") || "";
    var view = startView("Projects", "projects");
    var environmentSelect = select("environment", [["", "Space default (settings)"]], environment);
    main.appendChild(filterForm([
      field("From", dateInput("from", range.from)),
      field("To", dateInput("to", range.to)),
      field("Environment", environmentSelect),
      field("Benchmark", select("benchmark", [["", "Space default"], ["2021", "DORA 2021"], ["2023", "DORA 2023"], ["2024", "DORA 2024"]], benchmark)),
    ], function (values) { go("/projects", values); }));
    catalogue("environments").then(function (items) { if (view.live()) fillSelect(environmentSelect, items, "Space default (settings)"); }, function () {});
    var holder = h("div", { "aria-busy": "true" }, h("p", { class: "loading", text: "Loading projects…" }));
    main.appendChild(holder);
    return catalogue("projects").then(function (projects) {
      if (!view.live()) return;
      clear(holder);
      if (!projects.length) {
        holder.appendChild(h("p", { class: "info-box", text: "No projects yet: they appear with their first deployment." }));
        holder.setAttribute("aria-busy", "false");
        return;
      }
      var rows = projects.map(function (p) { return { project: p, summary: null, error: null }; });
      function figureOf(row, metric) { return row.summary ? headline(metric, row.summary) : null; }
      function metricColumn(label, metric) {
        return {
          label: label, num: false,
          key: function (row) { var f = figureOf(row, metric); return f && f.hasData && isNum(f.raw) ? f.raw : null; },
          cell: function (row) {
            if (row.error) return h("span", { class: "hint", text: "error " + row.error.status });
            var f = figureOf(row, metric);
            return f ? figureCell(f.value, f.tier, f.hasData && metric === "rework_rate") : "…";
          },
        };
      }
      var table = sortableTable("Projects with their figures for " + range.from + " to " + range.to + " (select a column to sort)", [
        { label: "Project", key: function (row) { return row.project.Name.toLowerCase(); }, cell: function (row) { return link(hashLink("/projects/" + enc(row.project.Id), { from: range.from, to: range.to, environment: environment, benchmark: benchmark }), row.project.Name); } },
        { label: "Deployments", num: true, key: function (row) { return row.summary ? row.summary.deployments : null; }, cell: function (row) { return row.summary ? String(row.summary.deployments) : row.error ? "—" : "…"; } },
        metricColumn("Deployment frequency", "deployment_frequency"),
        metricColumn("Lead time", "lead_time"),
        metricColumn("Change failure rate", "change_failure_rate"),
        metricColumn("Recovery time", "recovery_time"),
        metricColumn("Rework rate", "rework_rate"),
      ], rows, { index: 0, direction: "ascending" });
      holder.appendChild(table.node);
      var status = h("p", { class: "freshness", role: "status" });
      holder.appendChild(status);
      var params = Object.assign(apiRange(range), { environment: environment, benchmark: benchmark });
      var jobs = rows.map(function (row) { return function () { return request(spacePath("/summary"), Object.assign({ project: row.project.Id }, params)); }; });
      var oldest = null, pending = 0; // the table is as fresh as its least fresh row
      return pool(jobs, 3, function (index, result) {
        if (!view.live()) return;
        if (result.ok) {
          rows[index].summary = result.value.body;
          if (result.value.body.as_of && (!oldest || result.value.body.as_of < oldest)) oldest = result.value.body.as_of;
          pending = Math.max(pending, result.value.body.pending || 0);
        } else {
          rows[index].error = result.error;
        }
        table.refresh();
      }).then(function (results) {
        if (!view.live()) return;
        holder.setAttribute("aria-busy", "false");
        status.replaceWith(freshnessLine(oldest, pending));
        var failed = results.filter(function (r) { return !r.ok && !r.error.handled; });
        if (failed.length) holder.appendChild(errorBox("the figures of " + plural(failed.length, "project", "projects"), failed[0].error, route));
      });
    }, failInto(holder, "the projects", view, route));
  }

  function viewProject(query, projectId) {
    // The project's name for the heading, from the (cached) catalogue; its figures as the overview's.
    // Nothing is drawn when the reader has moved on meanwhile, or when the key was refused (sign-in shows).
    var asked = generation;
    return catalogue("projects").then(function (projects) {
      if (asked !== generation) return undefined;
      var found = projects.filter(function (p) { return p.Id === projectId; })[0];
      return viewOverview(query, projectId, found ? found.Name : projectId);
    }, function (error) {
      if (asked !== generation || (error && error.handled)) return undefined;
      return viewOverview(query, projectId, projectId);
    });
  }

  // ------------------------------------------------------------------------------------- deployments
  var STATES = ["Success", "Failed", "TimedOut", "Canceled", "Executing", "Queued"];
  var previousCursor = {}; // "<list>|<filters>|<cursor>" -> the cursor of the page before it ("" for the first)

  function flags(figures) {
    if (!figures) return h("span", { class: "hint", text: "not computed yet" });
    var out = [];
    if (figures.change_failure) out.push(h("span", { class: "flag flag-bad", text: "change failure" }));
    if (figures.rework) out.push(h("span", { class: "flag flag-rework", text: "rework" }));
    if (figures.lead_time_negative) out.push(h("span", { class: "flag flag-rework", text: "negative lead time" }));
    return out.length ? out : h("span", { class: "hint", text: "—" });
  }

  function deploymentsTable(items, caption) {
    if (!items.length) return h("p", { class: "info-box", text: "No deployments match." });
    return simpleTable(caption, [{ label: "Finished" }, { label: "Project" }, { label: "Environment" }, { label: "Version" }, { label: "State" }, { label: "Lead time", num: true }, { label: "Flags" }],
      items.map(function (d) {
        return h("tr", { dataset: { deployment: d.id } },
          h("th", { scope: "row" }, link("#/deployments/" + enc(d.id), when(d.finished_at))),
          h("td", null, bdi(d.project), d.tenant ? [" · ", bdi(d.tenant)] : null),
          h("td", { text: d.environment }),
          h("td", { class: "mono", text: d.version || "—" }),
          h("td", { class: "state-" + d.state, text: d.state }),
          h("td", { class: "num", text: d.figures ? duration(d.figures.lead_time_seconds) : "—" }),
          h("td", null, flags(d.figures)));
      }));
  }

  // Next/previous links of a cursor-paged list; the previous page is known when we came from it.
  function pager(list, path, filters, cursor, nextCursor) {
    var base = list + "|" + queryString(filters) + "|";
    var nav = h("nav", { class: "pager", "aria-label": "Pages" });
    if (cursor) {
      var previous = previousCursor[base + cursor];
      if (previous !== undefined) nav.appendChild(link(hashLink(path, Object.assign({}, filters, { cursor: previous })), "Previous page", { class: "button" }));
      else nav.appendChild(link(hashLink(path, filters), "First page", { class: "button" }));
    }
    if (nextCursor) {
      previousCursor[base + nextCursor] = cursor || "";
      nav.appendChild(link(hashLink(path, Object.assign({}, filters, { cursor: nextCursor })), "Next page", { class: "button", rel: "next" }));
    }
    return nav.childNodes.length ? nav : null;
  }

  function listFilters(query, names) {
    var out = {};
    names.forEach(function (n) { var v = query.get(n); if (v) out[n] = v; });
    return out;
  }

  function viewDeployments(query) {
    var filters = listFilters(query, ["project", "environment", "tenant", "state", "from", "to", "limit"]);
    var cursor = query.get("cursor") || "";
    var view = startView("Deployments", "deployments");
    var projectSelect = select("project", [["", "All projects"]], filters.project || "");
    var environmentSelect = select("environment", [["", "All environments"]], filters.environment || "");
    main.appendChild(filterForm([
      field("Project", projectSelect),
      field("Environment", environmentSelect),
      field("Tenant", h("input", { name: "tenant", value: filters.tenant || "", maxlength: "200" })),
      field("State", select("state", [["", "Any state"]].concat(STATES.map(function (s) { return [s, s]; })), filters.state || "")),
      field("Finished from", h("input", { type: "date", name: "from", value: filters.from || "" })),
      field("Finished to", h("input", { type: "date", name: "to", value: filters.to || "" })),
      field("Per page", select("limit", [["25", "25"], ["50", "50"], ["100", "100"]], filters.limit || "25")),
    ], function (values) { go("/deployments", values); }, link("#/deployments", "Clear", { class: "button" })));
    catalogue("projects").then(function (items) { if (view.live()) fillSelect(projectSelect, items, "All projects"); }, function () {});
    catalogue("environments").then(function (items) { if (view.live()) fillSelect(environmentSelect, items, "All environments"); }, function () {});
    var holder = h("section", { "aria-busy": "true", "aria-label": "Deployments found" }, h("p", { class: "loading", text: "Loading deployments…" }));
    main.appendChild(holder);
    var params = {
      project: filters.project, environment: filters.environment, tenant: filters.tenant, state: filters.state,
      from: dayStart(filters.from), to: dayEnd(filters.to),
      limit: filters.limit || 25, cursor: cursor,
    };
    return request(spacePath("/deployments"), params).then(function (answer) {
      if (!view.live()) return;
      clear(holder);
      holder.setAttribute("aria-busy", "false");
      holder.appendChild(deploymentsTable(answer.body.items || [], "Deployments, newest first"));
      holder.appendChild(pager("deployments", "/deployments", filters, cursor, answer.body.next_cursor));
      holder.appendChild(h("p", { class: "hint", text: "A list shows figures as last computed; a deployment's own page brings them up to date." }));
    }, failInto(holder, "the deployments", view, route));
  }

  // ------------------------------------------------------------------------------------- one deployment
  var RULES = {
    0: "Overridden by a correction",
    1: "The deployment failed (Failed or TimedOut, or succeeded with a guided failure)",
    2: "It was rolled back: a later deployment redeployed an earlier version",
    3: "A later deployment declares that it fixes this one",
    4: "A failure event names it as its cause",
    5: "A failure event without a cause began within the failure window after it, and it was the latest successful deployment",
  };
  var REWORK = {
    rollback: "It is a rollback",
    fixes: "It declares that it fixes an earlier deployment",
    first_success_after_change_failure: "It is the first successful deployment after a change failure",
  };
  var MODES = {
    MergeCommitShas: "the pull requests whose merge commits it names (METRICS §5, rule 1)",
    IntegrationBranch: "the pull requests merged into its integration branch since the stream's previous successful deployment (rule 2)",
    CommitSha: "the commits between the stream's previous successful deployment and its commit, and their pull requests (rule 3)",
    RepositoryOnly: "the repository's pull requests merged before it that no earlier deployment shipped (rule 4)",
  };

  // Where a repository's commits and pull requests can be opened, when the host is known.
  function codeHost(deployment) {
    if (deployment.source === "github") return { origin: "https://github.com", kind: "github" };
    try {
      var url = new URL(webUrl(deployment.source_url) || "");
      var kinds = { "github.com": "github", "gitlab.com": "gitlab", "bitbucket.org": "bitbucket" };
      if (kinds[url.hostname]) return { origin: url.origin, kind: kinds[url.hostname] };
    } catch (e) { /* no URL: no host */ }
    return null;
  }

  // "owner/name" (GitLab: "group/subgroup/name") as a URL path, each segment encoded.
  function repositoryPath(repository) { return String(repository).split("/").map(encodeURIComponent).join("/"); }

  function commitNode(host, repository, sha) {
    var text = h("code", { text: sha });
    if (!host || !repository) return text;
    var path = { github: "/commit/", gitlab: "/-/commit/", bitbucket: "/commits/" }[host.kind];
    return externalLink(host.origin + "/" + repositoryPath(repository) + path + encodeURIComponent(sha), text);
  }

  function pullNode(host, pr) {
    var label = (pr.repository ? pr.repository : "") + "#" + pr.number;
    if (!host || !pr.repository) return h("span", { text: label });
    var path = { github: "/pull/", gitlab: "/-/merge_requests/", bitbucket: "/pull-requests/" }[host.kind];
    return externalLink(host.origin + "/" + repositoryPath(pr.repository) + path + encodeURIComponent(pr.number), label);
  }

  function deploymentRef(id, text) { return id ? link("#/deployments/" + enc(id), text || id) : "—"; }

  function facts(pairs) {
    return h("dl", { class: "facts" }, pairs.filter(Boolean).map(function (pair) { return [h("dt", { text: pair[0] }), h("dd", null, pair[1])]; }));
  }

  function viewDeployment(query, deploymentId) {
    var view = startView("Deployment", "deployments");
    var holder = h("div", { "aria-busy": "true" }, h("p", { class: "loading", text: "Loading the deployment…" }));
    main.appendChild(holder);
    return request(spacePath("/deployments/" + enc(deploymentId))).then(function (answer) {
      if (!view.live()) return;
      var d = answer.body;
      append(clear(view.heading), ["Deployment of ", bdi(d.project), d.version ? [" ", bdi(d.version)] : null, " to ", bdi(d.environment)]);
      document.title = view.heading.textContent + " · DORA insights";
      clear(holder);
      holder.setAttribute("aria-busy", "false");
      renderDeployment(holder, d, view);
    }, failInto(holder, "the deployment " + deploymentId, view, route));
  }

  function renderDeployment(holder, d, view) {
    var figures = d.figures || {};
    var attribution = d.attribution;
    var host = codeHost(d);
    holder.appendChild(freshnessLine(d.as_of, d.pending, "its figures"));
    if (d.stream_health) {
      holder.appendChild(h("div", { class: "warn-box", role: "status" },
        h("p", { text: "The figures of this deployment's stream are stale: its recompute is failing." }),
        h("p", { class: "mono", text: JSON.stringify(d.stream_health) })));
    }
    holder.appendChild(facts([
      ["State", h("span", { class: "state-" + d.state, text: d.state + (d.had_guided_failure ? " (with a guided failure)" : "") + (d.rollback ? " · rollback" : "") })],
      ["Finished", when(d.finished_at)],
      ["Started", when(d.started_at)],
      ["Duration", duration(figures.duration_seconds)],
      ["Project", link(hashLink("/projects/" + enc(d.project_id)), d.project)],
      ["Environment", d.environment],
      d.tenant ? ["Tenant", d.tenant] : null,
      ["Channel", d.channel],
      d.commit_sha ? ["Commit", commitNode(host, d.repository, d.commit_sha)] : null,
      d.repository ? ["Repository", d.repository] : null,
      d.fixes ? ["Fixes", d.fixes] : null,
      d.source_url ? ["Source", externalLink(d.source_url, d.source_name || d.source_url)] : ["Source", d.source_name || d.source],
      d.tags && d.tags.length ? ["Tags", bdiList(d.tags, ", ")] : null,
      ["Id", h("code", { text: d.id })],
    ]));

    // What it shipped (METRICS §5).
    var shipped = h("section", { class: "explain", "aria-labelledby": "h-shipped", id: "attribution" }, h("h2", { id: "h-shipped", text: "What it shipped" }));
    if (!attribution) {
      shipped.appendChild(h("p", { text: "Attribution has not run for this deployment yet." }));
    } else {
      shipped.appendChild(facts([
        ["Attribution", attribution.state + (attribution.mode ? " · " + attribution.mode : "")],
        attribution.mode ? ["Rule", MODES[attribution.mode] || attribution.mode] : null,
        ["Attempts", String(attribution.attempts)],
        ["Changes", plural(attribution.commit_count, "commit", "commits") + ", " + plural(attribution.pull_request_count, "pull request", "pull requests")],
        attribution.change_started_at ? ["Earliest change", when(attribution.change_started_at)] : null,
        attribution.resolved_at ? ["Resolved", when(attribution.resolved_at)] : null,
      ]));
      if (attribution.state === "Pending") shipped.appendChild(h("p", { class: "warn-box", text: "Attribution is pending: the commits it names are not known yet. It is retried for up to 3 days, and at once when a push brings them." }));
      var pulls = h("ul", { class: "plain", id: "pull-requests", "aria-label": "Pull requests shipped" });
      var commits = h("ul", { class: "plain", id: "commits", "aria-label": "Commits shipped" });
      // Adds a page of changes; returns the first item added (null when none).
      var addPage = function (page) {
        var added = [];
        (page.pull_requests || []).forEach(function (pr) {
          added.push(pulls.appendChild(h("li", { dataset: { pullRequest: pr.number } }, pullNode(host, pr), pr.title ? [" ", bdi(pr.title)] : "",
            h("span", { class: "hint", text: " · opened " + when(pr.created_at) + (pr.merged_at ? ", merged " + when(pr.merged_at) : "") }))));
        });
        (page.commits || []).forEach(function (sha) { added.push(commits.appendChild(h("li", { dataset: { commit: sha } }, commitNode(host, d.repository, sha)))); });
        return added[0] || null;
      };
      addPage(attribution);
      shipped.appendChild(h("h3", { text: "Pull requests (" + attribution.pull_request_count + ")" }));
      shipped.appendChild(attribution.pull_request_count ? pulls : h("p", { class: "hint", text: "None." }));
      shipped.appendChild(h("h3", { text: "Commits (" + attribution.commit_count + ")" }));
      shipped.appendChild(attribution.commit_count ? commits : h("p", { class: "hint", text: "None." }));
      if (!host && (attribution.commit_count || attribution.pull_request_count)) {
        shipped.appendChild(h("p", { class: "hint", text: "The code host of this repository is not known, so changes are not linked." }));
      }
      // "Load more changes" while there is a next page. The button goes once used; focus moves to the
      // next page's button, else to the first change added (else the error), never to the page's body.
      var more = function (cursor) {
        if (!cursor) return null;
        var button = h("button", { type: "button", text: "Load more changes" });
        var loading = false;
        button.addEventListener("click", function () {
          if (loading) return;
          loading = true;
          button.setAttribute("aria-disabled", "true");
          request(spacePath("/deployments/" + enc(d.id)), { attribution_cursor: cursor }).then(function (answer) {
            if (!view.live()) return;
            var first = addPage(answer.body.attribution || {});
            var next = more(answer.body.attribution && answer.body.attribution.next_cursor);
            var focused = document.activeElement === button;
            if (next) button.replaceWith(next);
            else button.remove();
            var target = next || first;
            if (focused && target) {
              if (!next) target.setAttribute("tabindex", "-1");
              target.focus();
            }
          }, function (error) {
            if (error.handled) return;
            var box = errorBox("more changes", error);
            var focused = document.activeElement === button;
            box.setAttribute("tabindex", "-1");
            button.replaceWith(box);
            if (focused) box.focus();
          });
        });
        shipped.appendChild(button);
        return button;
      };
      more(attribution.next_cursor);
    }
    holder.appendChild(shipped);

    // Lead time, and the gaps around it (METRICS §3).
    var lead = h("section", { class: "explain", "aria-labelledby": "h-lead", id: "lead-time" }, h("h2", { id: "h-lead", text: "Lead time" }));
    if (!d.figures) {
      lead.appendChild(h("p", { text: "Not computed yet: the scheduled recompute (every 5 minutes) computes it." }));
    } else {
      var source = figures.lead_time_source === "Commits"
        ? "from the earliest change it newly shipped (" + (attribution && attribution.change_started_at ? when(attribution.change_started_at) : "its commits") + ") to its finish"
        : figures.lead_time_source === "Release"
          ? "from the first-seen time of release " + (figures.lead_time_from_version || "?") + " (no code data) to its finish"
          : null;
      lead.appendChild(facts([
        ["Lead time", duration(figures.lead_time_seconds)],
        ["Measured", source || (d.state === "Success" ? "no change to measure from" : "only successful deployments have a lead time")],
        ["Since the previous success", figures.time_since_previous_success_seconds === null || figures.time_since_previous_success_seconds === undefined
          ? "— (the first successful deployment of its stream, or not a success)"
          : [duration(figures.time_since_previous_success_seconds), " after ", deploymentRef(figures.previous_success_id)]],
        isNum(figures.time_to_recovery_seconds) ? ["Recovery", [duration(figures.time_to_recovery_seconds) + " after the failed deployment ", deploymentRef(figures.recovered_from_failed_id),
          " (" + plural(figures.deployments_until_recovery || 0, "deployment", "deployments") + " until recovery)"]] : null,
      ]));
      if (figures.lead_time_negative) lead.appendChild(h("p", { class: "warn-box", text: "The lead time is negative: a change is stamped after the deployment finished (clock skew). It is kept in medians and flagged." }));
    }
    holder.appendChild(lead);

    // Change failure and rework, with the rule that set each (METRICS §2).
    var failure = h("section", { class: "explain", "aria-labelledby": "h-failure", id: "change-failure" }, h("h2", { id: "h-failure", text: "Change failure and rework" }));
    if (!d.figures) {
      failure.appendChild(h("p", { text: "Not computed yet." }));
    } else {
      var reasons = figures.change_failure_reasons || [];
      failure.appendChild(facts([
        ["Change failure", figures.change_failure
          ? [h("span", { class: "flag flag-bad", text: "yes" }), " rule " + figures.change_failure_rule + ": " + (RULES[figures.change_failure_rule] || "")]
          : h("span", { class: "flag flag-ok", text: "no" })],
        figures.change_failure_cause ? ["Set by", causeNode(figures.change_failure_cause, reasons, d.id)] : null,
        d.change_failure_override !== null && d.change_failure_override !== undefined
          ? ["Override", "a correction sets it to " + (d.change_failure_override ? "yes" : "no") + (isBool(figures.change_failure_computed) ? "; the rules say " + (figures.change_failure_computed ? "yes" : "no") : "")] : null,
        ["Rework", figures.rework
          ? [h("span", { class: "flag flag-rework", text: "yes" }), " " + (REWORK[figures.rework_reason] || figures.rework_reason || "")]
          : h("span", { class: "flag flag-ok", text: "no" })],
      ]));
      if (reasons.length > 1 || (reasons.length && !figures.change_failure)) {
        failure.appendChild(h("h3", { text: "Every rule that applies" }));
        failure.appendChild(h("ul", null, reasons.map(function (r) {
          return h("li", null, "Rule " + r.rule + " (" + r.name + "): " + (RULES[r.rule] || ""), " — ", causeNode(r.deployment_id || r.failure_id, [r], d.id));
        })));
      }
      var rework = figures.rework_reasons || [];
      if (rework.length) {
        failure.appendChild(h("h3", { text: "Why it is rework" }));
        failure.appendChild(h("ul", null, rework.map(function (r) {
          return h("li", null, (REWORK[r.reason] || r.reason), r.deployment_id ? [" — ", deploymentRef(r.deployment_id)] : null);
        })));
      }
    }
    holder.appendChild(failure);
    if (d.remediation) holder.appendChild(facts([["Remediation", JSON.stringify(d.remediation)]]));
    loadCorrections(holder, d, view);
  }

  function isBool(v) { return v === true || v === false; }

  function causeNode(id, reasons, selfId) {
    if (id === selfId) return "this deployment";
    var reason = reasons.filter(function (r) { return r.deployment_id === id || r.failure_id === id; })[0];
    if (reason && reason.failure_id === id) return h("span", null, "failure event ", h("code", { text: id }), " (", link("#/failures", "failures"), ")");
    return deploymentRef(id, "deployment " + id);
  }

  // Corrections (PATCH/DELETE of a deployment), when the service has the route: 404/405 hide the section.
  function loadCorrections(holder, d, view) {
    var section = h("section", { class: "explain", "aria-labelledby": "h-corrections", id: "corrections", hidden: true },
      h("h2", { id: "h-corrections", text: "Corrections" }));
    holder.appendChild(section);
    request(spacePath("/deployments/" + enc(d.id) + "/corrections"), null, { allow: [404, 405] }).then(function (answer) {
      if (!view.live() || answer.status !== 200) return;
      var items = Array.isArray(answer.body) ? answer.body : (answer.body && (answer.body.items || answer.body.results || answer.body.corrections)) || [];
      section.hidden = false;
      if (!items.length) { section.appendChild(h("p", { class: "hint", text: "No corrections: the deployment is as it was sent." })); return; }
      section.appendChild(h("ul", { class: "plain" }, items.map(function (c) {
        var changes = Object.keys(c.changes || {}).map(function (name) {
          var change = c.changes[name] || {};
          return h("li", null, h("code", { text: name }), ": " + show(change.before) + " → " + show(change.after));
        });
        return h("li", { dataset: { correction: c.id || "" } },
          h("strong", { text: (c.action === "delete" ? "Removed" : "Corrected") }), " " + when(c.at), c.actor ? [" by ", bdi(c.actor)] : null, c.revision ? " (revision " + c.revision + ")" : "",
          changes.length ? h("ul", null, changes) : null);
      })));
    }, function (error) {
      if (error.handled || !view.live()) return;
      section.hidden = false;
      section.appendChild(errorBox("the corrections", error));
    });
  }

  function show(value) { return value === null || value === undefined ? "—" : typeof value === "object" ? JSON.stringify(value) : String(value); }

  // ------------------------------------------------------------------------------------- failures
  function viewFailures(query) {
    var filters = listFilters(query, ["project", "environment", "from", "to", "limit"]);
    var cursor = query.get("cursor") || "";
    var view = startView("Failures", "failures");
    var projectSelect = select("project", [["", "All projects"]], filters.project || "");
    var environmentSelect = select("environment", [["", "All environments"]], filters.environment || "");
    main.appendChild(filterForm([
      field("Project", projectSelect),
      field("Environment", environmentSelect),
      field("Started from", h("input", { type: "date", name: "from", value: filters.from || "" })),
      field("Started to", h("input", { type: "date", name: "to", value: filters.to || "" })),
      field("Per page", select("limit", [["25", "25"], ["50", "50"], ["100", "100"]], filters.limit || "25")),
    ], function (values) { go("/failures", values); }, link("#/failures", "Clear", { class: "button" })));
    catalogue("projects").then(function (items) { if (view.live()) fillSelect(projectSelect, items, "All projects"); }, function () {});
    catalogue("environments").then(function (items) { if (view.live()) fillSelect(environmentSelect, items, "All environments"); }, function () {});
    var holder = h("section", { "aria-busy": "true", "aria-label": "Failure events found" }, h("p", { class: "loading", text: "Loading failure events…" }));
    main.appendChild(holder);
    var params = {
      project: filters.project, environment: filters.environment,
      from: dayStart(filters.from), to: dayEnd(filters.to),
      limit: filters.limit || 25, cursor: cursor,
    };
    return request(spacePath("/failures"), params).then(function (answer) {
      if (!view.live()) return;
      clear(holder);
      holder.setAttribute("aria-busy", "false");
      var items = answer.body.items || [];
      if (!items.length) holder.appendChild(h("p", { class: "info-box", text: "No failure events match." }));
      else holder.appendChild(simpleTable("Failure events, newest start first", [{ label: "Started" }, { label: "Finished" }, { label: "Name" }, { label: "Projects" }, { label: "Environment" }, { label: "Severity" }, { label: "Time to restore", num: true }, { label: "Cause" }],
        items.map(function (f) {
          var restore = f.finished_at && f.started_at ? (Date.parse(f.finished_at) - Date.parse(f.started_at)) / 1000 : null;
          var cause = f.deployment_id ? deploymentRef(f.deployment_id) : f.commit_sha ? h("code", { text: f.commit_sha }) : f.version ? "version " + f.version : "—";
          return h("tr", { dataset: { failure: f.id } },
            h("th", { scope: "row", text: when(f.started_at) }),
            h("td", { text: f.finished_at ? when(f.finished_at) : "open" }),
            h("td", { text: f.name || "—" }),
            h("td", null, (f.projects || []).length ? bdiList(f.projects, ", ") : "—"),
            h("td", { text: f.environment || "—" }),
            h("td", { text: f.severity || "—" }),
            h("td", { class: "num", text: restore === null ? "—" : duration(restore) }),
            h("td", null, cause));
        })));
      holder.appendChild(pager("failures", "/failures", filters, cursor, answer.body.next_cursor));
    }, failInto(holder, "the failure events", view, route));
  }

  // ------------------------------------------------------------------------------------- reports
  function viewReports(query) {
    var skip = Math.max(0, parseInt(query.get("skip") || "0", 10) || 0);
    var view = startView("Reports", "reports");
    main.appendChild(h("p", { class: "hint", text: "The space's Octopus Insights reports: open one for its charts by split, range and granularity." }));
    var holder = h("section", { "aria-busy": "true", "aria-label": "Reports" }, h("p", { class: "loading", text: "Loading reports…" }));
    main.appendChild(holder);
    return request(spacePath("/insights/reports"), { skip: skip, take: 30 }).then(function (answer) {
      if (!view.live()) return;
      clear(holder);
      holder.setAttribute("aria-busy", "false");
      var items = answer.body.Items || [];
      if (!items.length) {
        holder.appendChild(h("p", { class: "info-box", text: "No reports yet. Create one with POST /api/{spaceId}/insights/reports (see the API docs)." }));
        return;
      }
      holder.appendChild(simpleTable("Reports", [{ label: "Report" }, { label: "Description" }, { label: "Projects" }, { label: "Time zone" }],
        items.map(function (r) {
          return h("tr", { dataset: { report: r.Id } },
            h("th", { scope: "row" }, link("#/reports/" + enc(r.Id), r.Name)),
            h("td", { text: r.Description || "—" }),
            h("td", { text: r.ProjectIds && r.ProjectIds.length ? plural(r.ProjectIds.length, "project", "projects") : "all" }),
            h("td", { text: r.TimeZone }));
        })));
      var nav = h("nav", { class: "pager", "aria-label": "Pages" });
      if (skip > 0) nav.appendChild(link(hashLink("/reports", { skip: Math.max(0, skip - 30) }), "Previous page", { class: "button" }));
      if (skip + items.length < (answer.body.TotalResults || 0)) nav.appendChild(link(hashLink("/reports", { skip: skip + 30 }), "Next page", { class: "button" }));
      if (nav.childNodes.length) holder.appendChild(nav);
    }, failInto(holder, "the reports", view, route));
  }

  function stat(name, field) { return function (interval) { var s = interval[name]; return s ? octopusSeconds(s[field]) : null; }; }
  var REPORT_CHARTS = [
    { key: "deployments", title: "Successful deployments", kind: "count", pick: function (i) { return i.NumberOfSuccessfulDeployments; } },
    { key: "lead_time", title: "Lead time (median)", kind: "duration", pick: stat("LeadTime", "Median") },
    { key: "deployment_failure_rate", title: "Deployment failure rate", kind: "percent", pick: function (i) { return i.DeploymentFailureRate ? i.DeploymentFailureRate.Rate : null; } },
    { key: "change_failure_rate", title: "Change failure rate", kind: "percent", pick: function (i) { return i.ChangeFailureRate ? i.ChangeFailureRate.Rate : null; } },
    { key: "recovery_time", title: "Time to recovery (mean)", kind: "duration", pick: stat("MeanTimeToRecovery", "Mean") },
    { key: "rework_rate", title: "Rework rate", kind: "percent", pick: function (i) { return i.ReworkRate ? i.ReworkRate.Rate : null; } },
    { key: "time_to_restore", title: "Incident time to restore (median)", kind: "duration", pick: stat("TimeToRestore", "Median") },
    { key: "time_between", title: "Time between deployments (median)", kind: "duration", pick: stat("TimeSincePreviousDeployment", "Median") },
  ];
  var SPLITS = [["None", "None"], ["Project", "Project"], ["ProjectGroup", "Project group"], ["Environment", "Environment"], ["EnvironmentGroup", "Environment group"], ["Tenant", "Tenant"], ["TenantTagSet", "Tenant tag set"]];

  function viewReport(query, reportId) {
    var split = query.get("split") || "None";
    var timeRange = query.get("timeRange") || "LastQuarter";
    var granularity = query.get("granularity") || "Weekly";
    var tagSet = query.get("tenantTagSetId") || "";
    var view = startView("Report", "reports");
    var tagSelect = select("tenantTagSetId", [["", "(for the tenant tag set split)"]], tagSet);
    main.appendChild(filterForm([
      field("Split", select("split", SPLITS, split)),
      field("Time range", select("timeRange", [["LastMonth", "Last month"], ["LastQuarter", "Last quarter"], ["LastYear", "Last year"]], timeRange)),
      field("Granularity", select("granularity", [["Daily", "Daily"], ["Weekly", "Weekly"], ["Monthly", "Monthly"]], granularity)),
      field("Tenant tag set", tagSelect),
    ], function (values) { go("/reports/" + enc(reportId), values); }));
    request(spacePath("/tenanttagsets"), { take: 100 }).then(function (answer) {
      if (view.live()) fillSelect(tagSelect, answer.body.Items || [], "(for the tenant tag set split)");
    }, function () {});
    request(spacePath("/insights/reports/" + enc(reportId))).then(function (answer) {
      if (!view.live()) return;
      append(clear(view.heading), ["Report ", bdi(answer.body.Name)]);
      document.title = view.heading.textContent + " · DORA insights";
    }, function () {});
    var holder = h("section", { "aria-busy": "true", "aria-label": "Report metrics", id: "report-metrics" }, h("p", { class: "loading", text: "Loading the report's metrics…" }));
    main.appendChild(holder);
    var params = { split: split, timeRange: timeRange, granularity: granularity, tenantTagSetId: split === "TenantTagSet" ? tagSet : null };
    return request(spacePath("/insights/reports/" + enc(reportId) + "/metrics"), params).then(function (answer) {
      if (!view.live()) return;
      clear(holder);
      holder.setAttribute("aria-busy", "false");
      var fresh = headerFreshness(answer.headers, "the report's views");
      if (fresh) holder.appendChild(fresh);
      var series = answer.body.Series || [];
      if (!series.length) { holder.appendChild(h("p", { class: "info-box", text: "No series: nothing in this report's scope yet." })); return; }
      var intervals = series[0].Intervals || [];
      holder.appendChild(h("p", { class: "hint", text: plural(series.length, "series", "series") + ", " + plural(intervals.length, "interval", "intervals") + " (" + granularity.toLowerCase() + ", " + timeRange + ")." }));
      var grid = h("div", { class: "charts" });
      holder.appendChild(grid);
      REPORT_CHARTS.forEach(function (chart) {
        var figure = chartFigure({
          key: chart.key,
          title: chart.title,
          kind: chart.kind,
          intervalLabel: "Interval start",
          labels: intervals.map(function (i) { return i.StartOfInterval; }),
          x: intervals.map(function (i) { return Date.parse(i.StartOfInterval + "T00:00:00Z") / 1000; }),
          series: series.map(function (s) { return { name: s.Name, values: (s.Intervals || []).map(chart.pick) }; }),
        });
        grid.appendChild(figure);
        mountChart(figure);
      });
    }, failInto(holder, "the report's metrics", view, route));
  }

  // ------------------------------------------------------------------------------------- insights
  var INSIGHT_KINDS = {
    deployment_frequency: "count", lead_time: "duration", recovery_time: "duration", time_to_restore: "duration",
    change_failure_rate: "percent", deployment_failure_rate: "percent", rework_rate: "percent",
  };

  // The kind of an insight's values: the metric's, except that a duration metric's "count" statistic
  // counts the durations measured (a number of recoveries, not seconds).
  function insightKind(q) {
    var kind = INSIGHT_KINDS[q.metric] || "count";
    return kind === "duration" && q.statistic === "count" ? "count" : kind;
  }

  function offsetOf(url) {
    if (!url) return null;
    try { return parseInt(new URL(url, window.location.href).searchParams.get("offset") || "0", 10) || 0; } catch (e) { return null; }
  }

  function viewInsights(query) {
    var offset = Math.max(0, parseInt(query.get("offset") || "0", 10) || 0);
    var view = startView("Insights", "insights");
    main.appendChild(h("p", { class: "hint", text: "The space's saved PostHog-style insights, each drawn from its stored result." }));
    var holder = h("section", { "aria-busy": "true", "aria-label": "Insights" }, h("p", { class: "loading", text: "Loading insights…" }));
    main.appendChild(holder);
    return request("/api/projects/" + enc(session.space()) + "/insights", { limit: 10, offset: offset }).then(function (answer) {
      if (!view.live()) return;
      clear(holder);
      holder.setAttribute("aria-busy", "false");
      var results = answer.body.results || [];
      if (!results.length) {
        holder.appendChild(h("p", { class: "info-box", text: "No saved insights yet. Create one with POST /api/projects/{spaceId}/insights (see the API docs)." }));
      }
      results.forEach(function (insight) { holder.appendChild(insightCard(insight)); });
      holder.querySelectorAll("figure.chart").forEach(mountChart);
      var nav = h("nav", { class: "pager", "aria-label": "Pages" });
      var previous = offsetOf(answer.body.previous), next = offsetOf(answer.body.next);
      if (previous !== null) nav.appendChild(link(hashLink("/insights", { offset: previous }), "Previous page", { class: "button" }));
      if (next !== null) nav.appendChild(link(hashLink("/insights", { offset: next }), "Next page", { class: "button" }));
      if (nav.childNodes.length) holder.appendChild(nav);
    }, failInto(holder, "the insights", view, route));
  }

  function insightCard(insight) {
    var q = insight.query || {};
    var title = insight.name || insight.derived_name || "Insight " + insight.id;
    var card = h("article", { class: "insight", dataset: { insight: insight.id } },
      h("h2", { text: title }),
      insight.description ? h("p", { text: insight.description }) : null,
      h("p", { class: "hint", text: [q.metric, INSIGHT_KINDS[q.metric] === "duration" ? q.statistic : null, q.split && q.split !== "None" ? "split by " + q.split : null, q.timeRange, q.granularity, q.reportId ? "report " + q.reportId : null].filter(Boolean).join(" · ") }),
      h("p", { class: "freshness", text: insight.last_refresh ? "Result as of " + when(insight.last_refresh) + "." : "No result computed yet." }));
    var result = insight.result;
    if (!result || !Array.isArray(result.interval) || !result.interval.length) return card;
    var kind = insightKind(q);
    card.appendChild(chartFigure({
      key: "insight-" + insight.id,
      title: title,
      kind: kind,
      intervalLabel: "Interval start",
      labels: result.interval.map(function (d) { return String(d).slice(0, 10); }),
      x: result.interval.map(function (d) { return Date.parse(String(d).slice(0, 10) + "T00:00:00Z") / 1000; }),
      series: (result.series || []).map(function (s) { return { name: s.name, values: s.values }; }),
    }));
    return card;
  }

  // ------------------------------------------------------------------------------------- start
  function start() {
    main = document.getElementById("main");
    var booting = document.getElementById("booting");
    if (booting) booting.remove();
    document.getElementById("sign-out").addEventListener("click", function () {
      session.signOut();
      catalogueCache = {};
      signInNotice = null;
      go("/overview");
    });
    document.getElementById("skip-link").addEventListener("click", function (event) {
      event.preventDefault();
      var heading = main.querySelector("h1");
      (heading || main).focus();
    });
    window.addEventListener("hashchange", route);
    window.addEventListener("unhandledrejection", function (event) {
      var error = event.reason;
      if (error && error.handled) { event.preventDefault(); return; }
    });
    route();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

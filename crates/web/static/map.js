// A small offline world map with a dot: LatchkeyMap.render(element, latitude, longitude) puts
// an inline SVG into `element` (the land from /static/world-map.js, Natural Earth 1:110m, public
// domain) with a dot at the coordinates and a text alternative for screen readers. No network
// beyond /static/world-map.js (loaded from beside this script if the page has not loaded it),
// no tile server, no inline styles (the page's CSP allows neither): colours are SVG attributes
// and classes from style.css.
//
// Elements carrying `data-latchkey-map` with `data-latitude` and `data-longitude` are drawn by
// themselves when the page loads; `data-label` replaces the text alternative.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var here = document.currentScript && document.currentScript.src;
  var waiting = [];
  var loading = false;

  function coordinate(value, limit) {
    var n = typeof value === "number" ? value : parseFloat(value);
    if (typeof value === "string" && !/^\s*-?\d+(\.\d+)?\s*$/.test(value)) return null;
    if (!isFinite(n) || n < -limit || n > limit) return null;
    return n;
  }

  function describe(lat, lon) {
    var ns = (lat >= 0 ? lat.toFixed(2) + "° N" : (-lat).toFixed(2) + "° S");
    var ew = (lon >= 0 ? lon.toFixed(2) + "° E" : (-lon).toFixed(2) + "° W");
    return "Map of the world with a dot at " + ns + ", " + ew;
  }

  function node(name, attrs) {
    var el = document.createElementNS(SVG, name);
    for (var k in attrs) el.setAttribute(k, attrs[k]);
    return el;
  }

  function draw(element, lat, lon, label) {
    var world = window.LatchkeyWorldMap;
    var w = world.width, h = world.height;
    var x = (lon + 180) / 360 * w;
    var y = (90 - lat) / 180 * h;
    var svg = node("svg", {
      viewBox: "0 0 " + w + " " + h, role: "img", "class": "latchkey-map",
      preserveAspectRatio: "xMidYMid meet", focusable: "false"
    });
    var title = node("title", {});
    title.textContent = label;
    svg.appendChild(title);
    svg.appendChild(node("rect", { x: 0, y: 0, width: w, height: h, "class": "latchkey-map-sea", fill: "#dbe9f6" }));
    svg.appendChild(node("path", { d: world.land, "class": "latchkey-map-land", fill: "#b9c4cf", stroke: "#8d99a6", "stroke-width": "0.6" }));
    svg.appendChild(node("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 24, "class": "latchkey-map-halo", fill: "#c0392b", "fill-opacity": "0.25" }));
    svg.appendChild(node("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 10, "class": "latchkey-map-dot", fill: "#c0392b", stroke: "#fff", "stroke-width": "2" }));
    svg.setAttribute("aria-label", label);
    element.setAttribute("data-rendered", "true");
    // Replace an earlier map; keep the element's own content (a caption) below it.
    var old = element.querySelector("svg.latchkey-map");
    if (old) old.parentNode.removeChild(old);
    element.insertBefore(svg, element.firstChild);
    return svg;
  }

  function loadWorld() {
    if (loading || !here) return;
    loading = true;
    var s = document.createElement("script");
    s.src = here.replace(/map\.js(\?.*)?$/, "world-map.js");
    s.onload = function () {
      var list = waiting;
      waiting = [];
      for (var i = 0; i < list.length; i++) draw.apply(null, list[i]);
    };
    document.head.appendChild(s);
  }

  // Draws the map; returns the <svg> (or null while /static/world-map.js is still loading, or
  // null and draws nothing when the coordinates are not numbers on the globe).
  function render(element, latitude, longitude, label) {
    var lat = coordinate(latitude, 90);
    var lon = coordinate(longitude, 180);
    if (!element || lat === null || lon === null) return null;
    var text = label || describe(lat, lon);
    if (window.LatchkeyWorldMap) return draw(element, lat, lon, text);
    waiting.push([element, lat, lon, text]);
    loadWorld();
    return null;
  }

  window.LatchkeyMap = Object.freeze({ render: render });

  function auto() {
    var maps = document.querySelectorAll("[data-latchkey-map]");
    for (var i = 0; i < maps.length; i++) {
      var m = maps[i];
      render(m, m.getAttribute("data-latitude"), m.getAttribute("data-longitude"),
        m.getAttribute("data-label"));
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", auto);
  } else {
    auto();
  }
})();

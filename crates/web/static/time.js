// Times: the server writes them in UTC (<time datetime="2026-12-01T18:49:11Z">1 Dec 2026,
// 18:49 UTC</time>); this shows each in the viewer's own time zone and keeps the UTC text as
// the tooltip; `data-seconds` asks for seconds too (logs). Without this script the UTC text
// stays, which is still right.
(function () {
  var options = { year: "numeric", month: "short", day: "numeric", hour: "2-digit",
    minute: "2-digit", timeZoneName: "short" };
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var el = times[i];
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) continue;
    var shown = options;
    if (el.hasAttribute("data-seconds")) {
      shown = Object.assign({}, options, { second: "2-digit" });
    }
    var local;
    try { local = when.toLocaleString(undefined, shown); } catch (e) { continue; }
    el.setAttribute("title", el.textContent);
    el.textContent = local;
  }
})();

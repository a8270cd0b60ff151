/*
 * Times on the holder page in the browser's own time zone: the server writes them in UTC
 * (<time datetime="…">), which is also what a page without scripts shows.
 */
(function () {
  "use strict";

  function two(n) {
    return (n < 10 ? "0" : "") + n;
  }

  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    zone = "";
  }
  document.querySelectorAll("time[datetime]").forEach(function (element) {
    var moment = new Date(element.getAttribute("datetime"));
    if (isNaN(moment.getTime())) {
      return;
    }
    element.title = element.textContent;
    element.textContent = two(moment.getDate()) + "." + two(moment.getMonth() + 1) + "." +
      moment.getFullYear() + " " + two(moment.getHours()) + ":" + two(moment.getMinutes()) +
      (zone ? " (" + zone + ")" : "");
    element.classList.add("local-time--converted");
  });
})();

// attachd's voicemail browser: progressive enhancements only. Every page
// works without this script (dates then show in UTC).
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // Dates in the browser's time zone.
  var fmt = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"});
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) {
      t.textContent = fmt.format(d);
      t.title = t.getAttribute("datetime");
    }
  });
  // The search's dates are days in the browser's time zone: say which.
  document.querySelectorAll("input[data-tz]").forEach(function (i) {
    i.value = String(-new Date().getTimezoneOffset());
  });
  // Seek buttons beside the player.
  var audio = document.getElementById("audio");
  document.querySelectorAll("button[data-seek]").forEach(function (b) {
    b.addEventListener("click", function () {
      if (!audio) return;
      var t = audio.currentTime + Number(b.getAttribute("data-seek"));
      audio.currentTime = Math.max(0, isFinite(audio.duration) ? Math.min(t, audio.duration) : t);
    });
  });
  // Keyboard: k or space (outside fields) plays and pauses, j and l seek.
  if (audio) {
    document.addEventListener("keydown", function (e) {
      var tag = (e.target && e.target.tagName) || "";
      if (e.altKey || e.ctrlKey || e.metaKey || /^(INPUT|TEXTAREA|SELECT|BUTTON|AUDIO|A)$/.test(tag)) return;
      if (e.key === "k" || e.key === " ") {
        audio.paused ? audio.play() : audio.pause();
        e.preventDefault();
      } else if (e.key === "j") {
        audio.currentTime = Math.max(0, audio.currentTime - 10);
      } else if (e.key === "l") {
        audio.currentTime = audio.currentTime + 10;
      }
    });
  }
});

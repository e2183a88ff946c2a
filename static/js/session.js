// A warning in the page (never a pop-up) two minutes before the idle timeout ends the session,
// with a button that keeps it; any request to the server (a page, an autosaved draft) restarts it.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-session-seconds") || "0", 10);
  var box = document.getElementById("session-warning");
  if (!seconds || !box) return;
  var WARN = Math.min(120, Math.floor(seconds / 2));
  var warnTimer = null, endTimer = null;

  function show(text, withButton) {
    box.textContent = text + " ";
    if (withButton) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "secondary";
      b.textContent = "Stay signed in";
      b.addEventListener("click", keep);
      box.appendChild(b);
    } else {
      var a = document.createElement("a");
      a.href = document.body.getAttribute("data-login-url") + "?next=" + encodeURIComponent(window.location.pathname);
      a.textContent = "Sign in again";
      box.appendChild(a);
    }
    box.hidden = false;
  }
  function schedule() {
    window.clearTimeout(warnTimer);
    window.clearTimeout(endTimer);
    box.hidden = true;
    var ends = new Date(Date.now() + seconds * 1000);
    var at = ends.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    warnTimer = window.setTimeout(function () {
      show("Your session ends at " + at + " unless you keep working; a note you are typing is kept.", true);
    }, (seconds - WARN) * 1000);
    endTimer = window.setTimeout(function () {
      show("Your session has ended after inactivity. Anything typed in a note is kept in this tab.", false);
    }, seconds * 1000);
  }
  function keep() {
    fetch(window.location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { if (r.ok && !r.redirected) schedule(); })
      .catch(function () { /* the end-of-session message follows if the server is unreachable */ });
  }
  document.addEventListener("twinportal:server-touched", schedule);
  schedule();
})();

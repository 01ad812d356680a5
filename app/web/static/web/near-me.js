// "Scenes near me": asks the browser for its position, then opens the list with lat and lng (WGS-84),
// which the near-me query of the scenes' service answers, nearest first. Without geolocation the
// button stays hidden and the search by district remains.
(function () {
  "use strict";
  var button = document.querySelector("[data-near-me]");
  var status = document.querySelector("[data-near-me-status]");
  if (!button || !("geolocation" in navigator)) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    button.disabled = true;
    status.textContent = button.getAttribute("data-near-me-busy");
    navigator.geolocation.getCurrentPosition(
      function (position) {
        var url = new URL(window.location.href);
        url.searchParams.delete("cursor");
        url.searchParams.set("lat", position.coords.latitude.toFixed(6));
        url.searchParams.set("lng", position.coords.longitude.toFixed(6));
        window.location.assign(url.toString());
      },
      function () {
        button.disabled = false;
        status.textContent = button.getAttribute("data-near-me-failed");
      },
      { enableHighAccuracy: false, timeout: 10000, maximumAge: 600000 }
    );
  });
})();

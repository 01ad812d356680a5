// The till's camera scanner: reads a voucher QR code with the vendored jsQR, puts the code in the
// code field and sends the form (a POST: the code never goes into a URL). Typing stays available;
// the scan button appears only where a camera can be opened (a secure context: HTTPS or localhost).
(function () {
  "use strict";
  var CODE = /^[0-9A-Za-z]{4}(-?[0-9A-Za-z]{4}){3}$/;

  function start() {
    var box = document.getElementById("scan");
    var form = document.getElementById("till-form");
    var typed = document.getElementById("f-code");
    if (typed && typed.value && document.activeElement === typed) typed.select(); // the next code replaces it
    if (!box || !form || typeof window.jsQR !== "function") return;
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
    var startButton = document.getElementById("scan-start");
    var stopButton = document.getElementById("scan-stop");
    var view = document.getElementById("scan-view");
    var video = document.getElementById("scan-video");
    var status = document.getElementById("scan-status");
    var input = document.getElementById("f-code");
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    var stream = null;
    box.hidden = false;

    function stop() {
      if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
      video.srcObject = null;
      view.hidden = true;
      startButton.hidden = false;
    }

    function tick() {
      if (!stream) return;
      if (video.readyState >= video.HAVE_ENOUGH_DATA && video.videoWidth) {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        context.drawImage(video, 0, 0, canvas.width, canvas.height);
        var image = context.getImageData(0, 0, canvas.width, canvas.height);
        var found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
        var text = found && found.data ? found.data.trim() : "";
        if (CODE.test(text)) {
          input.value = text.toUpperCase();
          stop();
          form.submit();
          return;
        }
      }
      window.requestAnimationFrame(tick);
    }

    startButton.addEventListener("click", function () {
      navigator.mediaDevices
        .getUserMedia({ video: { facingMode: "environment" }, audio: false })
        .then(function (media) {
          stream = media;
          video.srcObject = media;
          view.hidden = false;
          startButton.hidden = true;
          status.textContent = status.dataset.looking;
          return video.play();
        })
        .then(function () { window.requestAnimationFrame(tick); })
        .catch(function () {
          stop();
          status.textContent = status.dataset.denied;
          input.focus();
        });
    });
    stopButton.addEventListener("click", function () {
      stop();
      status.textContent = "";
      input.focus();
    });
    window.addEventListener("pagehide", stop);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

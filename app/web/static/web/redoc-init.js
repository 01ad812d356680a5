// Starts ReDoc on /redoc from the vendored bundle (a file, so the page needs no inline script).
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("redoc");
  Redoc.init(root.dataset.openapiUrl, { hideDownloadButton: false }, root);
});

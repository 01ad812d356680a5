// The home page's charts: reads the JSON in data-charts of #portal-charts (days and, per chart, its
// datasets) and draws each with the vendored Chart.js on the canvas of <figure data-chart="id">. The same
// figures are in a table under each chart, for screen readers and without JavaScript.
(function () {
  "use strict";
  var holder = document.getElementById("portal-charts");
  if (!holder || typeof window.Chart === "undefined") return;
  var data = JSON.parse(holder.getAttribute("data-charts"));
  var lang = document.documentElement.lang || "zh-CN";
  data.charts.forEach(function (chart) {
    var figure = document.querySelector('[data-chart="' + chart.id + '"]');
    if (!figure) return;
    var canvas = figure.querySelector("canvas");
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.days,
        datasets: chart.datasets.map(function (ds) {
          return { label: ds.label, data: ds.data, backgroundColor: ds.color, borderColor: ds.color, borderWidth: 1 };
        }),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        locale: lang,
        plugins: { legend: { display: chart.datasets.length > 1, position: "bottom" } },
        scales: {
          x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
          y: { beginAtZero: true, ticks: { precision: 0 } },
        },
      },
    });
  });
})();

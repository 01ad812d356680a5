// The authority's dashboards: each <canvas data-chart='…'> carries its chart as JSON (type, labels,
// datasets with label, data and colour; stacked, horizontal, integer, y-axis title) and is drawn with the
// vendored Chart.js. The same figures are in a table under each chart, for screen readers and without
// JavaScript.
(function () {
  "use strict";
  if (typeof window.Chart === "undefined") return;
  var lang = document.documentElement.lang || "zh-CN";
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var chart = JSON.parse(canvas.getAttribute("data-chart"));
    var value = chart.horizontal ? "x" : "y";
    var category = chart.horizontal ? "y" : "x";
    var scales = {};
    scales[category] = { stacked: !!chart.stacked, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } };
    scales[value] = {
      stacked: !!chart.stacked,
      beginAtZero: true,
      ticks: chart.integer ? { precision: 0 } : {},
      title: { display: !!chart.y, text: chart.y || "" },
    };
    new window.Chart(canvas, {
      type: chart.type,
      data: {
        labels: chart.labels,
        datasets: chart.datasets.map(function (ds) {
          return { label: ds.label, data: ds.data, backgroundColor: ds.color, borderColor: ds.color, borderWidth: 1 };
        }),
      },
      options: {
        indexAxis: chart.horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        locale: lang,
        plugins: { legend: { display: chart.datasets.length > 1, position: "bottom" } },
        scales: scales,
      },
    });
  });
})();

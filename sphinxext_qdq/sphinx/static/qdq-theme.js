/* sphinxext_qdq: hands the page's light or dark mode to the qdq-graph pictures.
 *
 * A graph is an SVG in an <object>: the page's CSS does not reach it, and on file://
 * its document cannot be touched from the page. So the mode travels in the URL: the
 * SVG carries its dark palette for "#qdq-dark" and its light one for "#qdq-light"
 * (and, without either, follows prefers-color-scheme). The mode is read from the
 * theme's own switch (furo: body[data-theme]; pydata-sphinx-theme and
 * sphinx-book-theme: html[data-theme]; "auto": the system setting) or, for a theme
 * without one, from the brightness of the page's background. */
(function () {
  "use strict";
  var SELECTOR = "object.qdq-graph";
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function systemIsDark() {
    return Boolean(media && media.matches);
  }

  function brightness(color) {
    var match = /rgba?\(([^)]+)\)/.exec(color || "");
    if (!match) return null;
    var parts = match[1].split(/[\s,/]+/).filter(Boolean).map(parseFloat);
    if (parts.length > 3 && parts[3] === 0) return null; // transparent
    return (0.2126 * parts[0] + 0.7152 * parts[1] + 0.0722 * parts[2]) / 255;
  }

  function backgroundIsDark(element) {
    for (var node = element; node && node.nodeType === 1; node = node.parentElement) {
      var value = brightness(window.getComputedStyle(node).backgroundColor);
      if (value !== null) return value < 0.5;
    }
    return false;
  }

  function pageIsDark(element) {
    var body = document.body;
    var chosen = (body && body.getAttribute("data-theme")) ||
                 document.documentElement.getAttribute("data-theme");
    if (chosen === "dark") return true;
    if (chosen === "light") return false;
    if (chosen === "auto") return systemIsDark();
    return backgroundIsDark(element);
  }

  function update() {
    var objects = document.querySelectorAll(SELECTOR);
    for (var i = 0; i < objects.length; i++) {
      var object = objects[i];
      var data = object.getAttribute("data");
      if (!data) continue;
      var dark = pageIsDark(object);
      var wanted = data.split("#")[0] + (dark ? "#qdq-dark" : "#qdq-light");
      // The object and the SVG in it get the same colour scheme (the SVG's style sets
      // it from the fragment): else the browser paints an opaque backdrop behind it.
      var scheme = dark ? "dark" : "light";
      if (wanted === data && object.style.colorScheme === scheme) continue;
      // Chromium does not reload an <object> whose data changes: replace it.
      var fresh = object.cloneNode(true);
      fresh.setAttribute("data", wanted);
      fresh.style.colorScheme = scheme;
      object.parentNode.replaceChild(fresh, object);
    }
  }

  function start() {
    update();
    var observer = new MutationObserver(update);
    var watched = {attributes: true, attributeFilter: ["data-theme", "data-mode", "class"]};
    observer.observe(document.documentElement, watched);
    if (document.body) observer.observe(document.body, watched);
    if (media) {
      if (media.addEventListener) media.addEventListener("change", update);
      else if (media.addListener) media.addListener(update);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

/* sphinxext_qdq: hands the page's light or dark mode to the qdq-graph pictures.
 *
 * A graph is an SVG in an <object>: the page's CSS does not reach it, and on file://
 * its document cannot be touched from the page. So the mode travels in the URL's
 * fragment (a navigation the page may make even then): the SVG carries its dark
 * palette for "#qdq-dark" and its light one for "#qdq-light"
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

  function absolute(url) {
    return new URL(url, document.baseURI).href.split("#")[0];
  }

  /* Show one graph in the page's mode: a fragment navigation inside the <object> (no
   * reload, the element stays: qdq-zoom.js keeps its hold on it), and the same colour
   * scheme on the object as inside the SVG, else the browser paints an opaque backdrop
   * behind it. Also allowed on file://, where the SVG's document is out of reach. */
  function show(object) {
    var data = object.getAttribute("data");
    if (!data || !object.contentWindow) return;
    var mode = pageIsDark(object) ? "dark" : "light";
    if (object.dataset.qdqMode === mode) return;
    object.style.colorScheme = mode;
    object.contentWindow.location.replace(absolute(data) + "#qdq-" + mode);
    object.dataset.qdqMode = mode;
  }

  function update() {
    var objects = document.querySelectorAll(SELECTOR);
    for (var i = 0; i < objects.length; i++) show(objects[i]);
  }

  function start() {
    var objects = document.querySelectorAll(SELECTOR);
    for (var i = 0; i < objects.length; i++) {
      // (re)loaded: its fragment is gone
      objects[i].addEventListener("load", function (event) {
        delete event.target.dataset.qdqMode;
        show(event.target);
      });
    }
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
  // every picture has loaded: give each its mode (an <object> still loading would lose
  // the fragment to its own load)
  if (document.readyState === "complete") update();
  else window.addEventListener("load", update);
})();

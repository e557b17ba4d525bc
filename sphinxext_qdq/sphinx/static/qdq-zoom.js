/* Pan and zoom for qdq-graph drawings (sphinxext_qdq; no dependencies, no network).
 *
 * Every <div class="qdq-zoom"> holds a viewport with the drawing (an SVG in <object>)
 * and a tool bar. The first view fits the drawing to the content width, but never below
 * a readable scale: a drawing wider than that is shown from its start (the graph input),
 * centred on it. Zoom: the buttons, + / - / 0 keys, ctrl + wheel and pinch (trackpads
 * send ctrl + wheel; touch screens two pointers). Pan: dragging, the wheel, arrow keys.
 * A click that did not move still follows the drawing's links.
 */
(function () {
  "use strict";
  var MIN_READABLE = 0.45; // first view: never smaller (text stays legible)
  var MIN_SCALE = 0.05;
  var MAX_SCALE = 8;
  var STEP = 1.25;

  function px(value) {
    var number = parseFloat(value);
    if (!isFinite(number)) return 0;
    return /pt$/.test(value) ? number * 4 / 3 : number;
  }

  function Zoom(root) {
    this.root = root;
    this.viewport = root.querySelector(".qdq-zoom-viewport");
    this.canvas = root.querySelector(".qdq-zoom-canvas");
    this.object = root.querySelector("object");
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.width = 0;
    this.height = 0;
    this.pointers = {};
    root.qdqZoom = this;
    var self = this;
    root.querySelectorAll("[data-qdq-zoom]").forEach(function (button) {
      button.addEventListener("click", function () { self.command(button.dataset.qdqZoom); });
    });
    this.viewport.addEventListener("keydown", function (event) { self.key(event); });
    this.viewport.addEventListener("wheel", function (event) {
      self.wheel(event, event.clientX, event.clientY);
    }, { passive: false });
    this.object.addEventListener("load", function () { self.attach(); });
    this.poll(0);
    window.addEventListener("resize", function () { if (self.width) self.firstView(); });
  }

  /* The SVG may have loaded before this script ran: look for it a few times. */
  Zoom.prototype.poll = function (tries) {
    var self = this;
    var doc = null;
    try { doc = this.object.contentDocument; } catch (error) { doc = null; }
    if (doc && doc.documentElement && doc.documentElement.tagName.toLowerCase() === "svg" &&
        doc.readyState === "complete") {
      this.attach();
    } else if (tries < 50 && !this.svg) {
      setTimeout(function () { self.poll(tries + 1); }, 100);
    } else if (!this.width) {
      this.attach(); // another origin or no SVG: buttons and keys on the object's box
    }
  };

  Zoom.prototype.attach = function () {
    if (this.attached) return;
    this.attached = true;
    var svg = null;
    try {
      svg = this.object.contentDocument && this.object.contentDocument.documentElement;
    } catch (error) { svg = null; } // another origin (file://): buttons and keys only
    var box = this.object.getBoundingClientRect();
    this.width = (svg && px(svg.getAttribute("width"))) || box.width / this.scale;
    this.height = (svg && px(svg.getAttribute("height"))) || box.height / this.scale;
    this.canvas.style.width = this.width + "px";
    this.canvas.style.height = this.height + "px";
    this.object.style.width = this.width + "px";
    this.object.style.height = this.height + "px";
    this.svg = svg;
    if (svg) this.listenInside(svg);
    this.firstView();
    this.root.classList.add("qdq-zoom-ready");
  };

  /* The start of the graph: its first graph input (id i0), else the top centre. */
  Zoom.prototype.start = function () {
    var node = null;
    if (this.svg) {
      this.svg.querySelectorAll("g.node").forEach(function (group) {
        var title = group.querySelector("title");
        if (!node && title && title.textContent === "i0") node = group;
      });
    }
    if (node && node.getBBox) {
      var root = this.svg;
      var box = node.getBBox();
      var matrix = node.getCTM();
      var origin = root.createSVGPoint();
      origin.x = box.x + box.width / 2;
      origin.y = box.y;
      var point = matrix ? origin.matrixTransform(matrix) : origin;
      return { x: point.x, y: point.y };
    }
    return { x: this.width / 2, y: 0 };
  };

  Zoom.prototype.firstView = function () {
    var available = this.viewport.clientWidth || this.root.clientWidth;
    var wanted = parseFloat(this.root.dataset.qdqScale || "");
    var scale = isFinite(wanted) && wanted > 0 ? wanted
      : Math.min(1, Math.max(MIN_READABLE, available / this.width));
    var height = Math.min(this.height * scale, window.innerHeight * 0.8);
    this.viewport.style.height = Math.max(120, height) + "px";
    this.scale = scale;
    var start = this.start();
    this.x = this.width * scale <= available ? (available - this.width * scale) / 2
      : available / 2 - start.x * scale;
    this.y = this.height * scale <= this.viewport.clientHeight ? 0
      : Math.min(0, 20 - start.y * scale);
    this.apply();
  };

  Zoom.prototype.clamp = function () {
    var w = this.viewport.clientWidth, h = this.viewport.clientHeight;
    var sw = this.width * this.scale, sh = this.height * this.scale;
    var margin = 40;
    this.x = sw <= w ? Math.max(Math.min(this.x, w - sw), 0)
      : Math.min(margin, Math.max(this.x, w - sw - margin));
    this.y = sh <= h ? Math.max(Math.min(this.y, h - sh), 0)
      : Math.min(margin, Math.max(this.y, h - sh - margin));
  };

  Zoom.prototype.apply = function () {
    this.clamp();
    this.canvas.style.transform = "translate(" + this.x + "px," + this.y + "px) scale(" +
      this.scale + ")";
    this.root.dataset.qdqScaleNow = this.scale.toFixed(4);
    var label = this.root.querySelector(".qdq-zoom-level");
    if (label) label.textContent = Math.round(this.scale * 100) + " %";
  };

  /* Zoom by *factor* keeping the viewport point (vx, vy) where it is. */
  Zoom.prototype.zoomAt = function (factor, vx, vy) {
    var scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    if (vx === undefined) { vx = this.viewport.clientWidth / 2; vy = this.viewport.clientHeight / 2; }
    this.x = vx - (vx - this.x) * scale / this.scale;
    this.y = vy - (vy - this.y) * scale / this.scale;
    this.scale = scale;
    this.apply();
  };

  Zoom.prototype.command = function (name) {
    if (name === "in") this.zoomAt(STEP);
    else if (name === "out") this.zoomAt(1 / STEP);
    else if (name === "fit") {
      var fit = Math.min(this.viewport.clientWidth / this.width,
                         this.viewport.clientHeight / this.height, MAX_SCALE);
      this.scale = fit; this.x = 0; this.y = 0; this.apply();
    } else if (name === "actual") this.zoomAt(1 / this.scale);
    else if (name === "start") this.firstView();
  };

  Zoom.prototype.key = function (event) {
    var step = 60;
    var actions = {
      "+": function (z) { z.command("in"); }, "=": function (z) { z.command("in"); },
      "-": function (z) { z.command("out"); }, "0": function (z) { z.command("start"); },
      "ArrowLeft": function (z) { z.x += step; z.apply(); },
      "ArrowRight": function (z) { z.x -= step; z.apply(); },
      "ArrowUp": function (z) { z.y += step; z.apply(); },
      "ArrowDown": function (z) { z.y -= step; z.apply(); }
    };
    if (actions[event.key] && !event.altKey && !event.metaKey && !event.ctrlKey) {
      actions[event.key](this);
      event.preventDefault();
    }
  };

  /* ctrl + wheel (and trackpad pinch) zooms; the wheel pans while the drawing can move
   * that way, then lets the page scroll. (vx, vy): the pointer in viewport pixels. */
  Zoom.prototype.wheel = function (event, clientX, clientY) {
    var box = this.viewport.getBoundingClientRect();
    if (event.ctrlKey || event.metaKey) {
      event.preventDefault();
      this.zoomAt(Math.exp(-event.deltaY / 300), clientX - box.left, clientY - box.top);
      return;
    }
    var before = { x: this.x, y: this.y };
    this.x -= event.deltaX;
    this.y -= event.deltaY;
    this.apply();
    if (this.x !== before.x || this.y !== before.y) event.preventDefault();
  };

  /* Events inside the SVG document: its coordinates -> the viewport's. */
  Zoom.prototype.listenInside = function (svg) {
    var self = this;
    var doc = svg.ownerDocument;
    function toViewport(event) {
      return { x: self.x + event.clientX * self.scale, y: self.y + event.clientY * self.scale };
    }
    doc.addEventListener("wheel", function (event) {
      var point = toViewport(event);
      var box = self.viewport.getBoundingClientRect();
      self.wheel(event, point.x + box.left, point.y + box.top);
    }, { passive: false });
    doc.addEventListener("keydown", function (event) { self.key(event); });
    var moved = false;
    doc.addEventListener("pointerdown", function (event) {
      self.pointers[event.pointerId] = toViewport(event);
      moved = false;
    });
    doc.addEventListener("pointermove", function (event) {
      var last = self.pointers[event.pointerId];
      if (!last) return;
      var now = toViewport(event);
      var ids = Object.keys(self.pointers);
      if (ids.length === 2) { // pinch
        var other = self.pointers[ids[0] == event.pointerId ? ids[1] : ids[0]];
        var before = Math.hypot(last.x - other.x, last.y - other.y);
        var after = Math.hypot(now.x - other.x, now.y - other.y);
        if (before > 0) self.zoomAt(after / before, (now.x + other.x) / 2, (now.y + other.y) / 2);
      } else {
        if (Math.abs(now.x - last.x) + Math.abs(now.y - last.y) > 0) {
          self.x += now.x - last.x;
          self.y += now.y - last.y;
          self.apply();
        }
      }
      if (Math.abs(now.x - last.x) + Math.abs(now.y - last.y) > 3) moved = true;
      self.pointers[event.pointerId] = toViewport(event);
      event.preventDefault();
    });
    function release(event) { delete self.pointers[event.pointerId]; }
    doc.addEventListener("pointerup", release);
    doc.addEventListener("pointercancel", release);
    doc.addEventListener("click", function (event) {
      if (moved) { event.preventDefault(); event.stopPropagation(); moved = false; }
    }, true);
    svg.style.touchAction = "none";
    svg.style.cursor = "grab";
  };

  function start() {
    document.querySelectorAll("div.qdq-zoom").forEach(function (root) {
      if (!root.qdqZoom) new Zoom(root);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

/*
 * Two fixes for Leaflet.VectorGrid 1.3.0 (the current release) with Leaflet 1.9.
 * Load this file after both, before the first click. gridgeo.maps inlines it in
 * folium maps that show the service's vector tiles.
 *
 * 1. VectorGrid calls L.DomEvent.fakeStop when a feature on a canvas tile is
 *    clicked; Leaflet 1.8 removed that function, so every click threw
 *    "L.DomEvent.fakeStop is not a function" and no click event fired. The
 *    upstream fix (Leaflet.VectorGrid PR #288, merged, unreleased) calls
 *    L.DomEvent.stop instead: so does this shim.
 * 2. A canvas tile finds the feature under the pointer in pixels of the map's
 *    zoom, which are not the tile's own when the map sits between zooms
 *    (zoomSnap < 1) or beyond maxNativeZoom: clicks then hit the wrong feature
 *    or nothing (VectorGrid issues #174 and #236, PR #252 open). Measure the
 *    pointer in the tile's pixels instead.
 * 3. Leaflet takes a clicked circle of radius 10 or less for a marker and asks
 *    it where it is (getLatLng); VectorGrid's points know only their pixel in a
 *    tile, so the click threw "Cannot read properties of undefined (reading
 *    'lat')". Without getLatLng, Leaflet places the event at the pointer.
 */
(function (L) {
  if (!L || !L.DomEvent) return;
  if (typeof L.DomEvent.fakeStop !== 'function') {
    L.DomEvent.fakeStop = L.DomEvent.stop;
  }
  if (L.VectorGrid) {
    var point = L.VectorGrid.prototype._createLayer.call(
      {options: {}}, {type: 1, geometry: [[{x: 0, y: 0}]], properties: {}}, L.point(1, 1));
    Object.getPrototypeOf(point).getLatLng = null;
  }
  if (!L.Canvas || !L.Canvas.Tile) return;
  L.Canvas.Tile.include({
    _tilePoint: function (e) {
      var map = this._map;
      return map.project(map.mouseEventToLatLng(e), this._tileCoord.z).subtract(this._tileCoord.scaleBy(this._size));
    },

    _onClick: function (e) {
      var point = this._tilePoint(e), clicked, layer;
      for (var id in this._layers) {
        layer = this._layers[id];
        if (layer.options.interactive && layer._containsPoint(point) && !this._map._draggableMoved(layer)) {
          clicked = layer;
        }
      }
      if (clicked) {
        L.DomEvent.fakeStop(e);
        this._fireEvent([clicked], e);
      }
    },

    _onMouseMove: function (e) {
      if (!this._map || this._map.dragging.moving() || this._map._animatingZoom) return;
      this._handleMouseHover(e, this._tilePoint(e));
    }
  });
})(window.L);

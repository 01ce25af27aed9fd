"""``gridgeo serve``: run the map service."""

import typer

from gridgeo.cli._app import app


@app.command()
def serve(
    store: str = typer.Option("data/gridgeo.gpkg", help="GeoPackage path or postgresql:// URL."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes (PostGIS stores)."),
):
    """Serve the API and the one-map page (needs the `server` extra)."""
    import os

    import uvicorn

    os.environ["GRIDGEO_STORE"] = store
    typer.echo(f"gridgeo serving {store} on http://{host}:{port}")
    uvicorn.run("api.boot:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")

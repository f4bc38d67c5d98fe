"""One module per dashboard page, each exposing render(); app.nav registers them."""

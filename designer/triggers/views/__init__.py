"""The triggers pages: each module loads through ``access`` (which checks team membership), calls a
service and renders."""

"""The library layer behind the command-line scripts in ``pipelines/``: experiment drivers that
join the forecaster, the data and the evaluation (the top layer: it may import every other
package, and none imports it)."""

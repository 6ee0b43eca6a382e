"""The bottom of the package: checkpoint I/O, atomic files, image listing, the assets and the packaged files."""

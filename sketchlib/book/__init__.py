"""What serves only the book: showing the library's source, the book's data files, and the
interactive widgets (ipywidgets, imported only by :mod:`sketchlib.book.widgets`)."""

"""What serves only the book: showing the library's source (source), the book's data files (assets),
the latent space's analysis (latent), the drawing canvas' functions (canvas), sketches as HTML and
animations (views), decoding latency (latency), and the interactive widgets (widgets; ipywidgets is
imported only there, inside the functions that build them)."""

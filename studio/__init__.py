"""The Gradio app's tabs and their plumbing (UI only; the computation lives in int_model, viz and training)."""

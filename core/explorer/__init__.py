"""Streamlit helpers shared by the explorer's pages: the scope selector, errors, display."""

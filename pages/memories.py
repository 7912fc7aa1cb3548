import streamlit as st
st.title("memories")

import streamlit as st
st.title("evaluate")

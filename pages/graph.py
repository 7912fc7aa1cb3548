import streamlit as st
st.title("graph")

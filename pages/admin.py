import streamlit as st
st.title("admin")

import streamlit as st
st.title("search")

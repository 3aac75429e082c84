"""teleicu"""

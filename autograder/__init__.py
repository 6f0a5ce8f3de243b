"""Instructor-only: reference implementations and the hidden checks that grade cells call.

Never shipped to students. A hidden test in a notebook is one line, e.g.
``check_lstm_cell(LSTMCell, points=4)``; the function prints which checks passed and
returns the points earned, which nbgrader reads as partial credit.
"""

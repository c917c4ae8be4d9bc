"""Worked examples the program strategy can show the model before the question (few-shot).

Written for dca, not taken from any dataset: each is a short word problem of the kinds a small
model gets wrong when it writes a program cold (a share of what is left, a rate in other units,
a relation at another time), solved in the style ``PROGRAM_SYSTEM`` asks for. They sit between
the system prompt and the conversation, the same for every question, so a warm model reads them
once (prefix reuse) and a cold one pays their prefill."""

from __future__ import annotations

PROGRAM_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "A school orders 14 boxes of pencils with 12 pencils in each box. It gives 5 pencils to each "
        "of the 30 students in one grade. How many pencils are left?",
        "pencils_per_box = 12\n"
        "boxes = 14\n"
        "total_pencils = boxes * pencils_per_box\n"
        "students = 30\n"
        "pencils_per_student = 5\n"
        "pencils_given = students * pencils_per_student\n"
        "pencils_left = total_pencils - pencils_given\n"
        "print(pencils_left)",
    ),
    (
        "A farmer picked 240 apples. He sold 35% of them at the market and used a quarter of the "
        "remaining apples to make pies. How many apples does he have left?",
        "apples = 240\n"
        "sold = apples * 35 / 100\n"
        "remaining = apples - sold\n"
        "used_for_pies = remaining / 4\n"
        "apples_left = remaining - used_for_pies\n"
        "print(apples_left)",
    ),
    (
        "Lena reads 15 pages every 20 minutes. How many hours will it take her to read a 270-page book?",
        "pages_per_minute = 15 / 20\n"
        "book_pages = 270\n"
        "minutes_needed = book_pages / pages_per_minute\n"
        "hours_needed = minutes_needed / 60\n"
        "print(hours_needed)",
    ),
    (
        "In 3 years Omar will be twice as old as his sister, who is 7 now. How old is Omar now?",
        "sister_age_now = 7\n"
        "sister_age_in_3_years = sister_age_now + 3\n"
        "omar_age_in_3_years = 2 * sister_age_in_3_years\n"
        "omar_age_now = omar_age_in_3_years - 3\n"
        "print(omar_age_now)",
    ),
)

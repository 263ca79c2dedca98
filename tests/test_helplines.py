"""Helplines with their phone numbers marked, for tel: links on the page."""

from psicoia import texts
from psicoia.transports.helplines import helplines, phones_in


def test_numbers_are_found_with_the_separators_people_write():
    entry = ("Argentina: Centro de Asistencia al Suicida 135 (desde CABA y Gran Buenos Aires) "
             "o (011) 5275-1135 (desde el resto del país)")
    assert phones_in(entry) == [{"shown": "135", "tel": "135"},
                                {"shown": "(011) 5275-1135", "tel": "01152751135"}]
    assert phones_in("España: 024") == [{"shown": "024", "tel": "024"}]
    assert phones_in("Emergencias: +34 112") == [{"shown": "+34 112", "tel": "+34112"}]
    assert phones_in("Sin números acá, 24 horas") == []


def test_every_default_helpline_has_a_number_to_call():
    for line in helplines(texts.CRISIS_RESOURCES_DEFAULT):
        assert line["phones"], line["text"]

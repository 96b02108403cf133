"""Our FHIR output read by an independent implementation: the `fhir.resources` models (R4B, the
nearest release to R4 that it ships; Questionnaire and QuestionnaireResponse are the same there)
must accept every shipped instrument's Questionnaire and a real assessment's QuestionnaireResponse."""
import json
import urllib.request

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from rounds_process import Rounds, Session, send_hl7


@pytest.fixture(scope="module")
def server():
    rounds = Rounds().start()
    send_hl7(rounds, "adt_a01_utf8.hl7")
    yield rounds
    rounds.remove()


def fetch(session, path):
    request = urllib.request.Request(session.base + path, headers={"Accept": "application/fhir+json"})
    with session.opener.open(request) as r:
        assert r.headers.get_content_type() == "application/fhir+json"
        return json.loads(r.read())


def test_questionnaires_and_a_response_validate(server):
    nurse = Session(server.base, "wang.fang")
    instruments = nurse.get("/api/v1/instruments")
    assert len(instruments) == 6
    for instrument in instruments:
        questionnaire = Questionnaire.model_validate(fetch(nurse, f"/api/v1/instruments/{instrument['code']}/questionnaire"))
        assert questionnaire.url == f"urn:rounds:instrument:{instrument['code']}"
        assert len(questionnaire.item) == len(instrument["items"]) + 2

    patient = [g for g in nurse.get("/api/v1/groups") if "MRN10001" in g["name"]]
    assert patient, "no group for the admitted patient"
    patient_id = patient[0]["patientId"]
    answers = {"initial_bmi_below_20_5": "yes", "initial_weight_loss_3_months": "no", "initial_reduced_intake_last_week": "no",
               "initial_severely_ill": "no", "nutrition_status": "moderate", "disease_severity": "mild"}
    status, assessment = nurse.post(f"/api/v1/patients/{patient_id}/assessments",
                                    {"instrument": "nrs-2002", "answers": answers, "idempotencyKey": "fhir-interop-0001"})
    assert status == 201 and assessment["total"] == 3 and assessment["band"] == "at_risk"
    response = QuestionnaireResponse.model_validate(fetch(nurse, f"/api/v1/assessments/{assessment['id']}/questionnaire-response"))
    assert response.status == "completed" and response.subject.reference == f"Patient/{patient_id}"
    totals = [i for i in response.item if i.linkId == "total"]
    assert totals[0].answer[0].valueInteger == 3
